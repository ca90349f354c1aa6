"""Rebuild ``vocabulary._REAL_WORDS`` from an English word list.

    python bench/real_words.py [/usr/share/dict/american-english]

Prints every word of the list (Debian's ``wamerican``) that the copy
constraint's typo tolerance would read as a number word ("there" as "three")
or as an answer-size word ("pints" as "points"), less the plurals and forms
that mean the number, and whether the set in ``vocabulary.py`` is that list.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lazarus_cot_router.experts import vocabulary  # noqa: E402

#: Words one letter from a number word that do mean the number.
MEAN_THE_NUMBER = frozenset("dozens eights elevens hundreds thousands sevens threes twelves halve doubly triply".split())


def typo_readings(word: str) -> bool:
    """Whether the typo tolerance, without its exceptions, reads ``word`` as a
    number word or an answer-size word it is not."""
    if word in vocabulary.NUMBER_WORDS or word in vocabulary._ANSWER_SIZES:
        return False
    kept, vocabulary._REAL_WORDS = vocabulary._REAL_WORDS, frozenset()
    try:
        return bool(vocabulary._spelled(word)) or vocabulary.sizes_answer(word)
    finally:
        vocabulary._REAL_WORDS = kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("words", nargs="?", default="/usr/share/dict/american-english", type=Path,
                        help="word list, one word per line (default: Debian's wamerican)")
    args = parser.parse_args(argv)
    listed = {w.strip().casefold() for w in args.words.read_text(errors="replace").splitlines() if w.strip().isalpha()}
    found = sorted(w for w in listed if typo_readings(w) and w not in MEAN_THE_NUMBER)
    print(" ".join(found))
    same = set(found) == vocabulary._REAL_WORDS
    print(f"{len(found)} words; vocabulary._REAL_WORDS is {'the same' if same else 'different'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
