# The two commands of the README.
#   make demo   set up, then run the main job on the embedded model
#   make test   set up, then run the test suite on the newest versions (.venv), then the
#               Lazarus tests and the version-sensitive tests on the lowest supported versions
#               beside the real chuk-lazarus (scripts/test-lazarus.sh, .venv-lazarus)
.PHONY: setup demo test test-fast test-lazarus

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/lazarus-cot-router demo

# Both halves run even when the first fails; the target fails if either does.
test: setup
	@status=0; .venv/bin/python -m pytest -q || status=1; \
	bash scripts/test-lazarus.sh || status=1; exit $$status

# The inner loop: everything but the tests marked slow (end-to-end runs on the embedded model).
test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow"

test-lazarus:
	@bash scripts/test-lazarus.sh
