"""Direction fitting, the layer sweep, collection and the calibrate CLI (tiny
models and synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from calibration.collect import HiddenSet, calibration_examples, collect_hidden, dedupe
from calibration.fit import TARGET_LOGIT, auroc, evaluate_fit, fit_directions
from calibration.sweep import format_per_expert, format_table, sweep_layers
from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.hidden_route import HiddenRouter, model_identity

EXPERTS = ["add", "chat", "multiply", "time"]


def gaussian_clusters(n_per: int = 50, dim: int = 16, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(EXPERTS), dim)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centers])
    labels = [name for name in EXPERTS for _ in range(n_per)]
    return x.astype(np.float32), labels


def test_fit_separable_clusters():
    x, labels = gaussian_clusters()
    fit = fit_directions(x, labels)
    assert fit.experts == EXPERTS
    np.testing.assert_allclose(np.linalg.norm(fit.directions, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(fit.thresholds, (fit.mean_pos + fit.mean_neg) / 2, rtol=1e-5)
    scores = fit.logits(x)
    for j, name in enumerate(EXPERTS):
        pos = np.asarray(labels) == name
        assert scores[pos, j].mean() == pytest.approx(TARGET_LOGIT, rel=1e-4)
        assert fit.thresholds[j] * fit.scales[j] + fit.biases[j] == pytest.approx(0, abs=1e-4)
    x_test, labels_test = gaussian_clusters(seed=0)
    report = evaluate_fit(fit, x_test + 0.01, labels_test)
    assert report["accuracy"] == 1.0 and report["routed_accuracy"] == 1.0
    assert all(m["auroc"] > 0.999 for m in report["per_expert"].values())
    assert fit.predict(x[:1]) == ["add"]


def test_whitened_fit_ignores_a_noisy_shared_axis():
    rng = np.random.default_rng(3)
    n, dim = 200, 8
    labels = np.array(["add", "chat"] * (n // 2))
    y = (labels == "add").astype(np.float64)
    x = rng.normal(size=(n, dim)) * 0.1
    x[:, 0] += 0.5 * y  # the signal: small but clean
    x[:, 1] += 0.6 * y + 3.0 * rng.normal(size=n)  # a larger mean shift buried in noise
    plain = evaluate_fit(fit_directions(x, labels), x, labels)["accuracy"]
    fit = fit_directions(x, labels, shrinkage=0.05)
    assert evaluate_fit(fit, x, labels)["accuracy"] == 1.0 > plain
    np.testing.assert_allclose(fit.logits(x)[labels == "add", 0].mean(), TARGET_LOGIT, rtol=1e-4)
    with pytest.raises(ValueError, match="shrinkage"):
        fit_directions(x, labels, shrinkage=0)


def test_fit_rejects_missing_classes():
    x, labels = gaussian_clusters()
    with pytest.raises(ValueError, match="ghost"):
        fit_directions(x, labels, EXPERTS + ["ghost"])
    with pytest.raises(ValueError, match="two experts"):
        fit_directions(x[:10], labels[:10])


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert np.isnan(auroc([1, 2], [1, 1]))
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=300), rng.integers(0, 2, 300).astype(bool)
    pairs = (s[y][:, None] > s[~y][None, :]).mean()
    assert auroc(s, y) == pytest.approx(pairs)


def synthetic_set(layers: int, seed: int, informative: int) -> HiddenSet:
    """Only layer ``informative`` separates the experts (at prompt_last)."""
    x, labels = gaussian_clusters(n_per=20, seed=0)
    rng = np.random.default_rng(seed)
    noise = lambda: rng.normal(size=(layers, *x.shape)).astype(np.float32)
    prompt_last, expert_token = noise(), noise()
    prompt_last[informative] = x + 0.1 * rng.normal(size=x.shape)
    return HiddenSet(hidden={"prompt_last": prompt_last, "expert_token": expert_token}, labels=labels, queries=[""] * len(labels))


def test_sweep_picks_the_informative_layer():
    result = sweep_layers(synthetic_set(5, 1, 3), synthetic_set(5, 2, 3), EXPERTS)
    assert (result.best.layer, result.best.position) == (3, "prompt_last")
    assert result.best.accuracy == 1.0
    assert len(result.rows) == 10
    noisy = [r.accuracy for r in result.rows if r.layer != 3 or r.position != "prompt_last"]
    assert max(noisy) < 0.6
    text = format_table(result)
    assert "chosen: layer 3, prompt_last" in text and "best at expert_token" in text
    restricted = result.restricted_to("expert_token")
    assert restricted.best.position == "expert_token" and restricted.fit is result.fits[restricted.best.layer, "expert_token"]
    assert "multiply" in format_per_expert(result.best)


def test_plots_written(tmp_path):
    import matplotlib  # noqa: F401  (a dependency: plots are part of the output)
    from calibration.plots import plot_accuracy, plot_auroc

    result = sweep_layers(synthetic_set(4, 1, 2), synthetic_set(4, 2, 2), EXPERTS)
    for path in (plot_accuracy(result, tmp_path / "a.png"), plot_auroc(result, tmp_path / "b.png")):
        assert path.read_bytes()[:4] == b"\x89PNG"


class FakeExpert:
    def __init__(self, name, prompts=()):
        self.name, self.calibration_prompts, self.system_prompt_example = name, prompts, None


def test_collect_on_tiny_model(tiny_model_dir):
    from lazarus_cot_router.models import load

    model, tokenizer = load(str(tiny_model_dir))
    experts = {"add": FakeExpert("add", ("3 plus 4",)), "time": FakeExpert("time", ("time in Paris",))}
    examples = [
        Example("What is 2 + 2?", "add", "2 + 2", "4"),
        Example("Time in Tokyo, answer in french", "time", "Asia/Tokyo", "Asia/Tokyo"),
        Example("add 17 and 25 please", "add", "17 + 25", "42"),
    ] + calibration_examples(experts)
    shared = collect_hidden(model, tokenizer, experts, examples, batch_size=2, progress=False)
    full = collect_hidden(model, tokenizer, experts, examples, batch_size=5, shared_prefix=False, progress=False)
    assert shared.hidden["prompt_last"].shape == (2, 5, 64)
    assert shared.labels == ["add", "time", "add", "add", "time"]
    for pos in ("prompt_last", "expert_token"):
        np.testing.assert_allclose(shared.hidden[pos], full.hidden[pos], atol=2e-4)
    assert len(dedupe(examples + examples)) == len(examples)
    story = [Example("Ann has 2 pens. Bo has 3. How many pens in all?", "add", "2 + 3", "5")]
    as_written, first = (collect_hidden(model, tokenizer, experts, story, progress=False, layout=layout)
                         for layout in ("as_written", "question_first"))
    assert first.tokens > as_written.tokens
    assert not np.allclose(first.hidden["prompt_last"], as_written.hidden["prompt_last"])


def test_calibrate_cli_end_to_end(tiny_model_dir, tmp_path, capsys):
    from calibration import calibrate

    out = tmp_path / "calib"
    rc = calibrate.main(
        ["--model", str(tiny_model_dir), "--out", str(out), "--calib-examples", "24", "--heldout-examples", "16", "--quiet", "--save-hidden"]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "chosen: layer" in text and "best at prompt_last" in text
    meta = yaml.safe_load((out / "calibration.yaml").read_text())
    assert meta["layer"] in (0, 1) and meta["position"] == "prompt_last"
    assert meta["identity"]["model"] == str(tiny_model_dir) and meta["identity"]["adapter"] is None
    sweep = yaml.safe_load((out / "sweep.yaml").read_text())
    assert len(sweep["sweep"]) == 4
    router = HiddenRouter.load(out, model_identity=model_identity(str(tiny_model_dir)))
    assert router.directions.shape[1] == 64
    assert set(router.experts) <= set(meta["experts"])
    import numpy as np

    saved = np.load(out / "hidden.npz")
    assert saved["calib_prompt_last"].shape[:1] == (2,) and saved["heldout_labels"].shape == (16,)
    assert calibrate.main(["--model", str(tmp_path / "nope"), "--out", str(out)]) == 1
