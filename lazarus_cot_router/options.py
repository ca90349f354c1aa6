"""The options of the built-in rewriters, one dataclass each: the ``options``
attribute of their factories, which :mod:`lazarus_cot_router.config` validates a
config section against (``help`` and bounds in each field's metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class TrainedCoTOptions:
    """Options of the ``trained-cot`` rewriter."""

    model: str = field(default="embedded", metadata={"help": "model to load: 'embedded' (the bundled model), a Hugging Face repo id or a local folder"})
    adapter: str | None = field(default=None, metadata={"help": "folder of the trained adapter (written by `lazarus-cot-router train`); null: the base model", "path": "dir"})
    max_tokens: int = field(default=64, metadata={"help": "most tokens generated for the routing line", "min": 1})
    routing: Literal["text", "hidden"] = field(default="text", metadata={"help": "'text': parse the expert name from the generated line; 'hidden': pick it from the hidden state at the expert token using the calibration"})
    calibration: str | None = field(default=None, metadata={"help": "calibration file or folder (written by `lazarus-cot-router calibrate`), needed for routing: hidden", "path": "any"})
    decoding: Literal["free", "generic", "full"] = field(default="generic", metadata={"help": "'generic': the line keeps to its grammar and copies names, places and numbers from the query; 'full': also a word problem's numbers in the query's order (a schedule's ordering rules are in both); 'free': no constraint"})
    resample: int = field(default=8, metadata={"help": "lines sampled for a second opinion when a line's result is not one its expert usually gives (a negative or fractional count); 0: pass an out-of-range line through, keep a fractional one", "min": 0})
    max_masked: float = field(default=0.95, metadata={"help": "pass the query through when the decoding constraint had to mask more than this share of the model's probability at one step, both as it decoded the line and on the line's canonical tokens (the line it preferred leaves the grammar or the query's words); 1: never", "min": 0.0, "max": 1.0})


@dataclass(frozen=True)
class FewShotOptions:
    """Options of the ``few-shot`` rewriter (the untrained baseline)."""

    model: str = field(default="embedded", metadata={"help": "model to load: 'embedded', a Hugging Face repo id or a local folder"})
    examples_per_expert: int = field(default=3, metadata={"help": "examples of each expert shown in the prompt", "min": 1})
    max_tokens: int = field(default=200, metadata={"help": "most tokens generated", "min": 1})
