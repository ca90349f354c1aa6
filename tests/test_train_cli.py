"""``lazarus-cot-router train``: config precedence and errors, and one tiny
end-to-end run (SFT, one RL iteration, held-out evaluation)."""

from __future__ import annotations

import json

import mlx_lm
import pytest
import yaml

from lazarus_cot_router.adapters import adapter_query_layout
from training import train
from training.config import ConfigError, TrainConfig, resolve_config


def _args(*argv):
    return train.build_parser().parse_args(list(argv))


def test_defaults_match_the_recipe():
    config = TrainConfig()
    assert (config.model, config.examples, config.sft_epochs, config.rl_iters, config.num_layers) == ("embedded", 1000, 1, 0, 10)
    assert (config.mawps_examples, config.clinc_examples, config.batch_size, config.learning_rate) == (2000, 300, 4, 8e-4)
    assert config.prefix_gradient is False and config.adam_bias_correction is True
    assert config.rewards == {"correct": 1.0, "wrong_result": 0.7, "spec_fails": 0.5, "wrong_expert": 0.3, "unparseable": 0.0}


def test_cli_beats_yaml_beats_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"examples": 40, "sft_epochs": 3, "learning_rate": 0.5, "lora_parameters": {"rank": 4}}))
    config = train.resolve_run_config(_args("--config", str(path), "--examples", "7", "--beta", "0.1"))
    assert (config.examples, config.sft_epochs, config.learning_rate, config.beta) == (7, 3, 0.5, 0.1)
    assert config.rl_iters == TrainConfig().rl_iters
    assert config.lora_parameters == {"rank": 4, "scale": 20.0, "dropout": 0.0}
    assert resolve_config({"lora_parameters": None}).lora_parameters["rank"] == 8


def test_resume_keeps_the_recipe_of_a_run_recorded_before_an_option_existed(tmp_path):
    # A run whose config.yaml predates adam_bias_correction was trained without it; resuming it
    # must not switch the correction on half way. A run that recorded it, or a CLI value, decides.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    older = {k: v for k, v in TrainConfig(out=str(run_dir), learning_rate=4e-4).to_dict().items() if k != "adam_bias_correction"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(older))
    resumed = train.resolve_run_config(_args("--out", str(run_dir), "--resume"))
    assert (resumed.adam_bias_correction, resumed.learning_rate) == (False, 4e-4)
    assert train.resolve_run_config(_args("--out", str(run_dir), "--resume", "--adam-bias-correction", "true")).adam_bias_correction
    (run_dir / "config.yaml").write_text(yaml.safe_dump(TrainConfig(out=str(run_dir)).to_dict()))
    assert train.resolve_run_config(_args("--out", str(run_dir), "--resume")).adam_bias_correction is True
    assert train.resolve_run_config(_args("--config", str(run_dir / "config.yaml"))).adam_bias_correction is True


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 5e-6\nrl_learning_rate: 1E-5\nbeta: 0\n")
    config = resolve_config({}, path)
    assert (config.learning_rate, config.rl_learning_rate, config.beta) == (5e-6, 1e-5, 0.0)
    assert isinstance(config.beta, float)


def test_unknown_yaml_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("examples: 4\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="'learning_rat'"):
        resolve_config({}, path)


@pytest.mark.parametrize("text,match", [("- a\n- b\n", "mapping"), ("a: [\n", "not valid YAML"), ("fine_tune_type: dora\n", "fine_tune_type"),
                                        ("operator_weight: 0\n", "operator_weight"), ("operator_weight: heavy\n", "operator_weight"),
                                        ("number_weight: -1\n", "number_weight"), ("number_weight: true\n", "number_weight"),
                                        ("distractor_share: 1.5\n", "distractor_share"), ("distractor_share: true\n", "distractor_share"),
                                        ("rl_learning_rate: fast\n", "rl_learning_rate must be a number"),
                                        ("batch_size: 4.5\n", "batch_size must be a whole number"), ("num_layers: true\n", "num_layers"),
                                        ("prefix_gradient: 0\n", "prefix_gradient must be true or false"), ("model: 7\n", "model must be a string"),
                                        ("rl_expert_weights: [word_problem]\n", "rl_expert_weights must be a mapping"),
                                        ("rl_max_masked: 1.5\n", "rl_max_masked must be a number from 0 to 1"),
                                        ("ema_decay: 1\n", "ema_decay must be a number from 0 up to"),
                                        ("query_layout: reversed\n", "query_layout must be one of as_written, question_first")])
def test_bad_config_files_exit_2(tmp_path, capsys, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert train.main(["--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert match in capsys.readouterr().err


def test_cli_help_lists_every_field(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--num-generations", "--reward-wrong-expert", "--lora-parameters", "--resume", "--checkpoint-every"):
        assert flag in out


def test_tiny_end_to_end_run(tiny_model_dir, tmp_path):
    config = resolve_config({
        "model": str(tiny_model_dir), "out": str(tmp_path / "run"), "examples": 12, "batch_size": 4, "num_layers": 1,
        "rl_iters": 1, "rl_batch_size": 2, "num_generations": 2, "max_completion_length": 6, "eval_examples": 2,
        "mawps_examples": 2, "clinc_examples": 2, "unsupported_examples": 4,
    })
    result = train.run(config, progress=False)
    run_dir = tmp_path / "run"
    names = {p.name for p in run_dir.iterdir()}
    assert {"adapters.safetensors", "adapter_config.json", "config.yaml", "metrics.jsonl", "checkpoint.safetensors", "sft_adapter", "eval.json"} <= names
    assert not [n for n in names if n.startswith(".")], names
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == config.to_dict()
    meta = json.loads((run_dir / "adapter_config.json").read_text())
    assert (meta["fine_tune_type"], meta["num_layers"]) == ("full", 1) and meta["base_model"]["hash"]
    assert meta["query_layout"] == "as_written" == adapter_query_layout(run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["sft"] * 5 + ["rl"]  # 12 generated + 4 unsupported + 2 MAWPS + 2 CLINC150
    assert all("loss" in r and "step" in r for r in records) and records[0]["tokens_per_s"] > 0
    assert result["eval"]["n"] == 2 and json.loads((run_dir / "eval.json").read_text())["n"] == 2
    model, _ = mlx_lm.load(str(tiny_model_dir), adapter_path=str(run_dir))
    assert model is not None
    assert train.main(["--out", str(run_dir), "--model", str(tiny_model_dir)]) == 2


def test_a_new_run_refuses_a_directory_that_holds_files(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    common = ["--model", str(tiny_model_dir), "--out", str(out), "--examples", "4", "--mawps-examples", "0",
              "--clinc-examples", "0", "--unsupported-examples", "0", "--batch-size", "4",
              "--num-layers", "1", "--rl-iters", "0", "--eval-examples", "0"]
    assert train.main(common) == 2
    assert "is not empty" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep me"
    assert not (out / "config.yaml").exists()
    assert train.main([*common, "--overwrite"]) == 0
    assert (out / "adapters.safetensors").exists() and (out / "notes.txt").exists()


def test_resume_in_rl_phase_continues_iterations(tiny_model_dir, tmp_path):
    out = str(tmp_path / "run")
    common = ["--model", str(tiny_model_dir), "--out", out, "--examples", "8", "--mawps-examples", "0",
              "--clinc-examples", "0", "--unsupported-examples", "0", "--batch-size", "4", "--num-layers", "1",
              "--rl-batch-size", "2", "--num-generations", "2", "--max-completion-length", "4", "--eval-examples", "0"]
    assert train.main([*common, "--rl-iters", "1"]) == 0
    assert train.main([*common, "--rl-iters", "2", "--resume"]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in records] == [("sft", 1), ("sft", 2), ("rl", 1), ("rl", 2)]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["rl_iters"] == 2


def test_resume_refuses_a_run_begun_on_other_training_examples(tiny_model_dir, tmp_path, monkeypatch, capsys):
    # A checkpoint's batches index into the examples; a version of the project whose
    # generators draw other examples must not continue it on them.
    from lazarus_cot_router.experts.word_problem import WordProblemExpert

    out = tmp_path / "run"
    common = ["--model", str(tiny_model_dir), "--out", str(out), "--examples", "12", "--mawps-examples", "0",
              "--clinc-examples", "0", "--unsupported-examples", "0", "--batch-size", "4", "--num-layers", "1",
              "--rl-iters", "0", "--eval-examples", "0", "--checkpoint-every", "1"]
    assert train.main(common) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setattr(WordProblemExpert, "train_weight", WordProblemExpert.train_weight * 4)
    assert train.main([*common, "--resume"]) == 2
    assert "other training examples" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    monkeypatch.undo()
    assert train.main([*common, "--resume"]) == 0
