# The two commands of the README.
#   make demo   set up, then run the main job on the embedded model
#   make test   set up, then run the test suite
.PHONY: setup demo test

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/lazarus-cot-router demo

test: setup
	.venv/bin/python -m pytest -q
