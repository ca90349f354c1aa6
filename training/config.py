"""Training configuration: one dataclass, merged CLI > YAML > defaults.

Every field carries its help text, so the argparse flags, the YAML keys and
the ``config.yaml`` written into each run directory all come from
:class:`TrainConfig`. RL fields use the names of TRL's ``GRPOConfig`` where one
exists (``num_generations``, ``temperature``, ``beta``,
``max_completion_length``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from lazarus_cot_router.atomic import atomic_write
from lazarus_cot_router.prompts import QUERY_LAYOUTS


class ConfigError(ValueError):
    """A configuration file or value that cannot be used."""


def _lora_defaults() -> dict:
    return {"rank": 8, "scale": 20.0, "dropout": 0.0}


@dataclass
class TrainConfig:
    model: str = field(default="embedded", metadata={"help": "Model spec for models.load: 'embedded', a local directory or a Hugging Face repo."})
    out: str = field(default="runs/router", metadata={"help": "Run directory: adapter, config.yaml, metrics.jsonl, checkpoint, plots."})
    seed: int = field(default=0, metadata={"help": "Seed for data generation, data order, LoRA init and sampling."})
    examples: int = field(default=1000, metadata={"help": "Number of generated training examples (training.generators: the built-in experts' generators, a plugin's own sample_example)."})
    expert_weights: dict = field(default_factory=dict, metadata={"help": "Share of each expert in the generated examples, by name, instead of its Expert.train_weight, e.g. '{word_problem: 1.6}' (an expert not named: its train_weight). The recipe's word_problem 2.4 against 1.6 is measured in docs/training.md."})
    mawps_examples: int = field(default=2000, metadata={"help": "Word problems drawn from the MAWPS + ASDiv-A training split (public corpus, corpora.mawps; 2,605 in all)."})
    distractor_share: float = field(default=0.0, metadata={"help": "Share of the MAWPS + ASDiv-A problems that get another training problem's opening statement, with a number the answer does not use, inserted before the question (training.distractors); the spec stays the same. 0.3 lifted MAWPS dev problems with an unused number and lowered MAWPS dev overall on two seeds (docs/training.md)."})
    clinc_examples: int = field(default=300, metadata={"help": "Queries drawn from the CLINC150 training split (public corpus, corpora.clinc150): every time and calculator query it maps to an expert, the rest chat."})
    mathematics_examples: int = field(default=0, metadata={"help": "Questions drawn from mathematics_dataset's train split (public corpus, corpora.mathematics): one-operation arithmetic, and numeric questions of kinds no expert answers as chat (equations, primes, polynomials, ...; not the kinds its test split asks). 400 lifted its dev split and lowered the calib split on two seeds (docs/training.md), so it is off."})
    gsm8k_examples: int = field(default=0, metadata={"help": "Word problems drawn from GSM8K's train split (public corpus, corpora.gsm8k: 1,477 whose worked solutions chain into one expression of at most 3 operations that the copy constraint allows). 600 cost MAWPS dev 9 points on seed 0 (docs/training.md), so it is off."})
    unsupported_examples: int = field(default=0, metadata={"help": "Generated requests for a computation no built-in expert does (training.generators.unsupported: chains, powers, roots, compound percentages, fractions, ...), as chat. 200 pulled one-operation requests toward chat on the calib split and passed no more of CLINC150 val's calculator_other through (docs/training.md), so it is off."})
    sft_epochs: int = field(default=1, metadata={"help": "Epochs of supervised fine-tuning (0 skips SFT)."})
    batch_size: int = field(default=4, metadata={"help": "SFT examples per optimizer step (split across ranks when distributed). 4 without the prefix gradient (at 4e-4, before adam_bias_correction) did better than 8 at 6e-4 on the mean of three seeds on every dev set, in about the same time (docs/training.md)."})
    prefix_gradient: bool = field(default=False, metadata={"help": "SFT gradient through the shared prefix's keys and values in the trained blocks. False runs the prefix through them forward only each step, its keys and values taken as constants: SFT at batch 4 ran 1.15x faster (bench/sft_pipeline.py --compare prefix); measured on the dev sets in docs/training.md."})
    learning_rate: float = field(default=8e-4, metadata={"help": "SFT Adam learning rate (peak, after warm-up). 8e-4 with adam_bias_correction; the recipe before it, 4e-4 without, is --adam-bias-correction false --learning-rate 4e-4."})
    adam_bias_correction: bool = field(default=True, metadata={"help": "SFT's Adam corrects the bias of its moment estimates (mlx's Adam leaves it out, so its early steps are several times larger than the learning rate says). With learning_rate 8e-4 against 4e-4 without it, it lifted the mean of three seeds on MAWPS dev, the generated calib split and mathematics dev (docs/training.md)."})
    warmup_steps: int = field(default=10, metadata={"help": "SFT steps of linear learning-rate warm-up (a full-weight first Adam step at the peak rate wrecks the model)."})
    ema_decay: float = field(default=0.0, metadata={"help": "SFT ends on an exponential moving average of the trained weights, moved toward them after every step with this decay (training.ema; 0.995 gives the last 200 steps most of the weight), instead of the last step's weights; 0 is off. 0.995 lowered MAWPS dev on two seeds and moved the generated calib split up on one and down on the other (docs/training.md), so it is off."})
    lr_decay: str = field(default="cosine", metadata={"help": "SFT learning rate after warm-up: 'cosine' (down to a tenth of the peak at the last step) or 'constant'."})
    operator_weight: float = field(default=3.0, metadata={"help": "SFT loss weight of the tokens that write a word_problem spec's step operators (+ - * /), every other token weighing 1 (the loss is the weighted mean; 1 weighs all alike). The operator is the choice a word problem's line leaves to the model, and where its errors are; 3 lifted MAWPS dev over 1 on two seeds (docs/training.md)."})
    number_weight: float = field(default=1.0, metadata={"help": "SFT loss weight of the tokens that begin a word_problem spec's numbers (the start, and each step's operand: which of the query's numbers goes where), every other token weighing 1 unless it writes an operator (operator_weight). 3 lowered MAWPS dev, calib and mathematics dev on two seeds (docs/training.md), so it is 1."})
    prompt_loss_weight: float = field(default=0.0, metadata={"help": "SFT loss weight of the query's own tokens (the user turn), added to the mean over the answer's tokens: the model also learns to predict the requests it reads. 0 trains on the answer alone (mlx-lm's --mask-prompt). 0.1 lifted the generated calib split on one seed and lowered MAWPS dev on two (docs/training.md), so it is off."})
    prompt_loss_stride: int = field(default=1, metadata={"help": "With prompt_loss_weight above 0, the prompt loss takes every this many of the query's tokens (1: all): each costs a projection onto the vocabulary (at 1, SFT steps took 1.21x as long: bench/sft_pipeline.py --compare prompt)."})
    query_layout: str = field(default="as_written", metadata={"help": "How the model reads a query of two sentences or more (lazarus_cot_router.prompts.lay_out_query), in training and, recorded in adapter_config.json, at run time: 'as_written'; 'question_first', its last sentence (a word problem's question) on a line before the whole query; 'question_moved', that sentence moved there. question_first lifted MAWPS dev and the calib split on the mean of two seeds but not SVAMP on seed 0, and makes SFT read more tokens; question_moved lowered MAWPS dev on both seeds (docs/training.md). So it is as_written."})
    fine_tune_type: str = field(default="full", metadata={"help": "'full': train all weights of the last num_layers blocks; 'lora': LoRA adapters on their linear layers."})
    num_layers: int = field(default=10, metadata={"help": "Number of final transformer blocks that are trained (the seed needed 6; 3 was too few)."})
    lora_parameters: dict = field(default_factory=_lora_defaults, metadata={"help": "LoRA rank, scale and dropout (mlx-lm convention; used when fine_tune_type is 'lora')."})
    rl_iters: int = field(default=0, metadata={"help": "GRPO iterations after SFT (0 skips RL). Off by default: from the default SFT adapter, 20 iterations (30 with word problems weighted 4x) lowered execution accuracy on the MAWPS dev split."})
    rl_batch_size: int = field(default=4, metadata={"help": "Prompts per RL iteration."})
    rl_expert_weights: dict = field(default_factory=dict, metadata={"help": "Weight of each gold expert's examples when RL draws its prompts, e.g. '{word_problem: 4}' (an expert not named: 1). Most groups of an easy expert are all right and teach nothing."})
    num_generations: int = field(default=4, metadata={"help": "Completions sampled per prompt (GRPO group size)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature for RL completions."})
    beta: float = field(default=0.0, metadata={"help": "KL penalty coefficient against the reference (post-SFT) policy."})
    rl_learning_rate: float = field(default=2e-5, metadata={"help": "RL Adam learning rate (1e-4 wrecked the router in 20 iterations)."})
    constrained_sampling: bool = field(default=True, metadata={"help": "Sample RL completions under the copy constraint the rewriter decodes with, so rewards score only the choices it leaves to the model."})
    rl_max_masked: float = field(default=1.0, metadata={"help": "With constrained_sampling, score a sampled line for which the constraint rejected more than this share of the model's probability at one step as the rewriter treats it (its max_masked, 0.95 by default): passed through, a chat line; 1: never. Off by default: at 0.99 RL still lowered MAWPS dev (docs/training.md)."})
    constrained_policy: bool = field(default=False, metadata={"help": "With constrained_sampling, score each sampled token by the policy it was drawn from, the model's distribution without the tokens the constraint rejected, so a negative advantage does not move probability onto rejected tokens (which max_masked then passes through). Off by default: RL still lowered MAWPS dev with it (docs/training.md)."})
    max_completion_length: int = field(default=48, metadata={"help": "Maximum number of tokens in a sampled completion."})
    reward_correct: float = field(default=1.0, metadata={"help": "Reward: right expert and the spec executes to the gold answer."})
    reward_wrong_result: float = field(default=0.7, metadata={"help": "Reward: right expert, spec executes, wrong answer."})
    reward_spec_fails: float = field(default=0.5, metadata={"help": "Reward: right expert, spec does not execute."})
    reward_wrong_expert: float = field(default=0.3, metadata={"help": "Reward: parseable line naming the wrong expert."})
    reward_unparseable: float = field(default=0.0, metadata={"help": "Reward: output that is not a routing line."})
    eval_examples: int = field(default=200, metadata={"help": "Held-out examples evaluated after training (0 skips evaluation)."})
    checkpoint_every: int = field(default=10, metadata={"help": "Steps between resumable checkpoints (0 disables them)."})

    def __post_init__(self):
        for f in config_fields():
            setattr(self, f.name, _checked_value(f.name, str(f.type), getattr(self, f.name)))
        if self.fine_tune_type not in ("full", "lora"):
            raise ConfigError(f"fine_tune_type must be 'full' or 'lora', not {self.fine_tune_type!r}")
        if self.num_layers < 1:
            raise ConfigError(f"num_layers must be at least 1, not {self.num_layers}")
        if self.query_layout not in QUERY_LAYOUTS:
            raise ConfigError(f"query_layout must be one of {', '.join(QUERY_LAYOUTS)}, not {self.query_layout!r}")
        if self.lr_decay not in ("cosine", "constant"):
            raise ConfigError(f"lr_decay must be 'cosine' or 'constant', not {self.lr_decay!r}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be at least 0, not {self.warmup_steps}")
        for name in ("operator_weight", "number_weight"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a number above 0, not {getattr(self, name)!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be a number from 0 up to (not including) 1, not {self.ema_decay!r}")
        if not 0 <= self.distractor_share <= 1:
            raise ConfigError(f"distractor_share must be a number from 0 to 1, not {self.distractor_share!r}")
        if self.prompt_loss_weight < 0:
            raise ConfigError(f"prompt_loss_weight must be a number >= 0, not {self.prompt_loss_weight!r}")
        if self.prompt_loss_stride < 1:
            raise ConfigError(f"prompt_loss_stride must be at least 1, not {self.prompt_loss_stride}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {self.batch_size}")
        if not 0 <= self.rl_max_masked <= 1:
            raise ConfigError(f"rl_max_masked must be a number from 0 to 1, not {self.rl_max_masked!r}")
        unknown = set(self.lora_parameters) - {"rank", "scale", "dropout", "keys"}
        if unknown:
            raise ConfigError(f"unknown lora_parameters key(s): {', '.join(sorted(unknown))}")
        self.lora_parameters = {**_lora_defaults(), **self.lora_parameters}
        for option in ("expert_weights", "rl_expert_weights"):
            for name, weight in getattr(self, option).items():
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                    raise ConfigError(f"{option}[{name!r}] must be a number >= 0, not {weight!r}")

    @property
    def rewards(self) -> dict[str, float]:
        """Reward levels keyed by outcome, for the RL reward function."""
        return {
            "correct": self.reward_correct,
            "wrong_result": self.reward_wrong_result,
            "spec_fails": self.reward_spec_fails,
            "wrong_expert": self.reward_wrong_expert,
            "unparseable": self.reward_unparseable,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_KIND_NAMES = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false", "dict": "a mapping"}


def _checked_value(name: str, kind: str, value: Any) -> Any:
    """``value`` as field ``name``'s type ``kind``, or a ``ConfigError`` naming it.

    A float may come as a string: YAML 1.1 reads ``5e-6`` (no dot) as one."""
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    expected = {"int": int, "float": (int, float), "str": str, "bool": bool, "dict": dict}[kind]
    if not isinstance(value, expected) or (isinstance(value, bool) and kind in ("int", "float")):
        raise ConfigError(f"{name} must be {_KIND_NAMES[kind]}, not {value!r}")
    return float(value) if kind == "float" else value


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _parse_mapping(text: str) -> dict:
    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping such as '{{rank: 8}}', not {text!r}")
    return value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; every default is None so that an absent flag
    does not override the YAML file."""
    for f in config_fields():
        if f.type in ("dict", dict):
            kind, metavar = _parse_mapping, "YAML"
        elif f.type in ("bool", bool):
            kind, metavar = _parse_bool, "BOOL"
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), str)
            metavar = None
        parser.add_argument(_flag(f.name), dest=f.name, type=kind, default=None, metavar=metavar, help=f.metadata["help"])


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path) as fid:
            data = yaml.safe_load(fid)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    known = {f.name for f in config_fields()}
    for key in data:
        normalized = str(key).replace("-", "_")
        if normalized not in known:
            raise ConfigError(f"unknown key {key!r} in config file {path}; known keys: {', '.join(sorted(known))}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


#: Options whose default changed after runs began recording their config: a run's ``config.yaml``
#: without the key was written before it existed, and trained with this value.
VALUES_BEFORE_RECORDED = {"adam_bias_correction": False}


def resolve_config(cli: dict[str, Any] | None = None, yaml_path: str | os.PathLike | None = None,
                   yaml_absent: dict[str, Any] | None = None) -> TrainConfig:
    """CLI values (None means not given) > YAML file > ``yaml_absent`` (values for keys the YAML
    file lacks) > dataclass defaults."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(yaml_absent or {})
        values.update(load_yaml(yaml_path))
    known = {f.name for f in config_fields()}
    for key, value in (cli or {}).items():
        if key in known and value is not None:
            values[key] = value
    try:
        return TrainConfig(**values)
    except TypeError as e:
        raise ConfigError(str(e)) from e


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    atomic_write(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
