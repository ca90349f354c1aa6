"""``lazarus-cot-router SUBCOMMAND ...``: each subcommand is a module with
``build_parser()`` and ``main(argv)``, imported only when it runs."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "generate": ("lazarus_cot_router.generate", "chat-templated greedy generation"),
    "route": ("lazarus_cot_router.route", "route one query and print its line and action"),
    "doctor": ("lazarus_cot_router.doctor", "MLX version, device, BLAS and matmul speed"),
    "data": ("training.data", "generate a split and export it as YAML"),
    "train": ("training.train", "SFT (then RL with verified rewards, --rl-iters); writes an adapter"),
    "eval": ("training.evaluate", "score a router on an evaluation suite or a YAML query file"),
    "calibrate": ("calibration.calibrate", "fit expert directions from hidden states"),
    "bench": ("commands.bench", "trained router vs few-shot, side by side"),
    "demo": ("commands.demo", "the main job: train, calibrate, bench"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: lazarus-cot-router COMMAND [ARGS]\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lazarus-cot-router: unknown command {name!r}\n\n{_usage()}", file=sys.stderr, end="")
        return 2
    from lazarus_cot_router.blas import ensure_fast_blas

    ensure_fast_blas()
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
