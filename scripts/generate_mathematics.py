"""Write ``corpora/data/mathematics/arithmetic.jsonl``: questions of DeepMind's mathematics_dataset.

The file is vendored, so nothing here runs at install or test time. To regenerate it
byte for byte, in a virtual environment of its own (the package needs an old sympy):

    pip install mathematics_dataset==1.0.1 sympy==1.5.1
    python scripts/generate_mathematics.py > corpora/data/mathematics/arithmetic.jsonl

It samples the authors' ``interpolate`` test split (their test difficulty, the same
generator as their training data) with seed 0: the three modules that ask one binary
operation, and modules whose questions no expert of this project answers (chains of
operations, other bases, roots, remainders, comparisons, rounding, unit and clock
conversions). ``corpora.mathematics`` maps them to routing examples.
"""

from __future__ import annotations

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


def main() -> None:
    import numpy as np
    from absl import flags
    from mathematics_dataset import generate

    flags.FLAGS(sys.argv[:1])
    random.seed(0)
    np.random.seed(0)
    generate.init_modules()
    modules = generate.filtered_modules["interpolate"]
    for name, count in {**ONE_OPERATION, **OTHER}.items():
        for _ in range(count):
            problem, _ = generate.sample_from_module(modules[name])
            row = {"module": name, "question": str(problem.question), "answer": str(problem.answer)}
            print(json.dumps(row))


if __name__ == "__main__":
    main()
