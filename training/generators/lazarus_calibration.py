"""The built-in experts' Lazarus calibration examples, package data the runtime reads.

The runtime generates no queries, so ``lazarus_cot_router.lazarus_experts`` calibrates
the built-in experts with examples stored in ``lazarus_cot_router/data/lazarus_calibration.yaml``:
per side (``positive``: ``CALIBRATION_POSITIVES``, ``negative``: ``CALIBRATION_NEGATIVES``) and
expert, the first ``train`` draws of ``random.Random(f"lazarus-calibration:{side}:{name}")``.
This module writes that file again after a generator changes::

    python -m training.generators.lazarus_calibration            # rewrite the package's file
    python -m training.generators.lazarus_calibration --check    # exit 1 where it is stale
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path
from typing import Sequence

import yaml

import lazarus_cot_router
from lazarus_cot_router.atomic import atomic_write
from lazarus_cot_router.experts.base import Expert
from lazarus_cot_router.experts.builtin import default_experts
from lazarus_cot_router.lazarus_experts import CALIBRATION_FILE, CALIBRATION_NEGATIVES, CALIBRATION_POSITIVES

from . import sample_example

SIDES = (("positive", CALIBRATION_POSITIVES), ("negative", CALIBRATION_NEGATIVES))
HEADER = "# Written by `python -m training.generators.lazarus_calibration`; do not edit.\n"


def calibration_path() -> Path:
    """The package's calibration file."""
    return Path(lazarus_cot_router.__file__).parent / CALIBRATION_FILE


def draw_calibration(experts: Sequence[Expert] | None = None) -> dict[str, dict[str, list[dict[str, str]]]]:
    """``{side: {expert: [{query, spec}, ...]}}`` for ``experts`` (default: the built-in ones)."""
    chosen = default_experts() if experts is None else experts
    table: dict[str, dict[str, list[dict[str, str]]]] = {}
    for side, count in SIDES:
        table[side] = {}
        for expert in chosen:
            rng = random.Random(f"lazarus-calibration:{side}:{expert.name}")
            drawn = (sample_example(expert, rng, "train") for _ in range(count))
            table[side][expert.name] = [{"query": e.query, "spec": e.spec} for e in drawn]
    return table


def dump_calibration(table: dict[str, dict[str, list[dict[str, str]]]]) -> str:
    return HEADER + yaml.safe_dump(table, sort_keys=False, allow_unicode=True, width=math.inf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.generators.lazarus_calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=calibration_path(), help="file to write (default: the package's)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out differs")
    args = parser.parse_args(argv)
    text = dump_calibration(draw_calibration())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is stale: run python -m training.generators.lazarus_calibration", file=sys.stderr)
            return 1
        return 0
    atomic_write(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
