"""Write ``corpora/data/mathematics/*.jsonl``: questions of DeepMind's mathematics_dataset.

The files are vendored, so nothing here runs at install or test time. To regenerate them, in a
virtual environment of its own (the package needs an old sympy and numpy):

    pip install mathematics_dataset==1.0.1 sympy==1.5.1 "numpy<1.24"
    python scripts/generate_mathematics.py > corpora/data/mathematics/arithmetic.jsonl
    python scripts/generate_mathematics.py train > corpora/data/mathematics/train.jsonl

It samples the authors' ``interpolate`` test split (their test difficulty, the same
generator as their training data) with seed 0: the three modules that ask one binary
operation, and modules whose questions no expert of this project answers (chains of
operations, other bases, roots, remainders, comparisons, rounding, unit and clock
conversions). ``corpora.mathematics`` maps them to routing examples.

``train`` samples the authors' ``train`` split (seed 1): the three one-operation modules, and
modules that no expert answers either but that the test file never samples (equations,
derivatives, polynomials, primes and factors, digits, sorting, probability), so the test
file's kinds of questions that must stay chat are never trained on, composed or not.

The test file comes out byte for byte, and so do the train file's one-operation rows; the
other modules' questions change from run to run (sympy's ordering), so the vendored train file
is one run's output.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

#: Questions per module: one binary operation each (the arithmetic experts' kind of query).
ONE_OPERATION = {"arithmetic__add_or_sub": 200, "arithmetic__mul": 200, "arithmetic__div": 200}
#: Questions per module that no expert answers.
OTHER = dict.fromkeys((
    "arithmetic__add_or_sub_in_base", "arithmetic__add_sub_multiple", "arithmetic__mixed",
    "arithmetic__mul_div_multiple", "arithmetic__nearest_integer_root", "comparison__pair",
    "measurement__conversion", "measurement__time", "numbers__div_remainder", "numbers__gcd",
    "numbers__lcm", "numbers__round_number",
), 25)
#: Train-split questions per module: the one-operation modules, then modules of other kinds
#: than :data:`OTHER` (neither the same module nor its ``_composed`` form); two modules that fail
#: with these sympy and numpy versions (``calculus__differentiate_composed``, ``polynomials__compose``)
#: are left out.
TRAIN = {**dict.fromkeys(ONE_OPERATION, 300), **dict.fromkeys((
    "algebra__linear_1d", "algebra__linear_1d_composed", "algebra__linear_2d", "algebra__linear_2d_composed",
    "algebra__polynomial_roots", "algebra__polynomial_roots_composed", "algebra__sequence_next_term",
    "algebra__sequence_nth_term", "arithmetic__simplify_surd", "calculus__differentiate",
    "comparison__closest", "comparison__closest_composed",
    "comparison__kth_biggest", "comparison__kth_biggest_composed", "comparison__sort", "comparison__sort_composed",
    "numbers__is_factor", "numbers__is_factor_composed", "numbers__is_prime", "numbers__is_prime_composed",
    "numbers__list_prime_factors", "numbers__list_prime_factors_composed", "numbers__place_value",
    "numbers__place_value_composed", "polynomials__coefficient_named", "polynomials__collect",
    "polynomials__evaluate", "polynomials__evaluate_composed", "polynomials__expand",
    "polynomials__simplify_power", "probability__swr_p_level_set", "probability__swr_p_sequence",
), 15)}


#: What each file samples: the authors' regime, the seed, and questions per module.
SPLITS = {"test": ("interpolate", 0, {**ONE_OPERATION, **OTHER}), "train": ("train", 1, TRAIN)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("split", nargs="?", default="test", choices=SPLITS,
                        help="test: arithmetic.jsonl (default); train: train.jsonl")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import numpy as np
    from absl import flags
    from mathematics_dataset import generate

    regime, seed, counts = SPLITS[args.split]
    flags.FLAGS(sys.argv[:1])
    random.seed(seed)
    np.random.seed(seed)
    generate.init_modules()
    modules = generate.filtered_modules[regime]
    for name, count in counts.items():
        for _ in range(count):
            problem, _ = generate.sample_from_module(modules[name])
            row = {"module": name, "question": str(problem.question), "answer": str(problem.answer)}
            print(json.dumps(row))


if __name__ == "__main__":
    main()
