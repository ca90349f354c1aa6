"""``bench`` end to end on a tiny random model: outputs exist, parse, add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from commands import bench
from commands.bench_report import format_report
from lazarus_cot_router.atomic import atomic_write

QUERIES = [
    {"query": "256 * 4", "expert": "multiply", "spec": "256 * 4", "answer": 1024},
    {"query": "What is 7 + 5? Answer briefly.", "expert": "add", "spec": "7 + 5", "answer": 12,
     "tags": ["instruction:brief"]},
    {"query": "Current time in Tokyo", "expert": "time", "spec": "Asia/Tokyo", "answer": "Asia/Tokyo"},
    {"query": "Tell me a joke", "expert": "chat", "spec": "", "answer": None},
    {"query": "72 / 9", "expert": "divide", "spec": "72 / 9", "answer": 8},
]


def write_tiny_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter with random (non-zero) weights for the tiny model."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    model, _ = load_model(model_dir)
    model.freeze()
    config = {"fine_tune_type": "lora", "num_layers": 2,
              "lora_parameters": {"rank": 4, "scale": 10.0, "dropout": 0.0}}
    linear_to_lora_layers(model, config["num_layers"], config["lora_parameters"])
    mx.random.seed(1)
    weights = {k: mx.random.normal(v.shape) * 0.05 for k, v in tree_flatten(model.trainable_parameters())}
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), weights)
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def bench_run(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    queries = tmp / "queries.yaml"
    queries.write_text(yaml.safe_dump(QUERIES))
    adapter = write_tiny_adapter(tiny_model_dir, tmp / "adapter")
    out = tmp / "out"
    code = bench.main(["--model", str(tiny_model_dir), "--adapter", str(adapter), "--queries", str(queries),
                       "--latency-queries", "3", "--warmup", "1", "--batch-size", "3",
                       "--max-tokens", "12", "--few-shot-max-tokens", "24",
                       "--calibration", str(tmp / "no-such-calibration"), "--out", str(out), "--quiet"])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def test_outputs_exist_and_parse(bench_run):
    out, results = bench_run
    report = (out / "report.md").read_text()
    assert report.startswith("# Bench")
    for name in ("few-shot", "system-prompt", "trained-cot"):
        assert f"### {name}" in report
    for plot in results["plots"]:
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    if not results["plots"]:
        assert "matplotlib" in results["plots_skipped"]
    assert not list(out.glob(".*"))  # no temporary files left behind
    assert results["command"].startswith("lazarus-cot-router bench ")
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["mlx"]


def test_figures_are_consistent(bench_run):
    _, results = bench_run
    n = len(QUERIES)
    assert results["config"]["n_queries"] == n and results["config"]["latency_queries"] == 3
    ran = {k: r for k, r in results["rewriters"].items() if r["available"]}
    assert set(ran) == {"few-shot", "system-prompt", "trained-cot"}
    for r in ran.values():
        a = r["accuracy"]
        assert a["n"] == n
        assert sum(e["n"] for e in a["per_expert"].values()) == n
        assert a["extra_instruction"]["n"] == 1
        for subset in (a, a["extra_instruction"], *a["per_expert"].values()):
            for key in ("format", "expert", "spec", "execution"):
                assert 0.0 <= subset[f"{key}_accuracy"] <= 1.0
        # A chat query counts as routed right whenever the host passes it through, line or no line,
        # so expert accuracy may exceed format accuracy; it never falls below execution accuracy.
        assert a["execution_accuracy"] <= a["expert_accuracy"]
        assert a["per_expert"]["chat"]["expert_accuracy"] == a["per_expert"]["chat"]["execution_accuracy"]
        rows = r["confusion"]["rows"]
        assert {g: sum(row.values()) for g, row in rows.items()} == {g: e["n"] for g, e in a["per_expert"].items()}
        correct = sum(row.get(g, 0) for g, row in rows.items())
        assert correct == round(a["expert_accuracy"] * n)
        lat = r["latency"]
        assert lat["n"] == 3 and all(s > 0 for s in lat["samples_s"])
        assert 0 < lat["p50_s"] <= lat["p95_s"]
        t = r["throughput"]
        assert t["batched_qps"] > 0 and t["sequential_qps"] > 0 and t["batched_n"] == n
        assert r["tokens"]["prompt_tokens"] >= r["tokens"]["prefill_tokens"] > 0
        assert r["memory"]["mlx_peak_mb"] > 0 and r["memory"]["rss_peak_mb"] > 0
    assert ran["few-shot"]["tokens"]["prompt_tokens"] > ran["trained-cot"]["tokens"]["prompt_tokens"]
    hidden = results["rewriters"]["trained-cot-hidden"]
    assert not hidden["available"] and hidden["reason"].startswith("not available")
    c = results["comparison"]
    assert c["latency_p50_speedup"] > 0 and c["trained_batched_over_sequential"] > 0


def test_summary_and_report_render(bench_run):
    _, results = bench_run
    summary = bench.format_summary(results)
    for name in ("few-shot", "system-prompt", "trained-cot", "trained-cot-hidden"):
        assert name in summary
    assert "trained-cot vs few-shot" in summary
    assert format_report(results) == (bench_run[0] / "report.md").read_text()


def test_latency_examples_cover_experts():
    from lazarus_cot_router.experts.base import Example

    examples = [Example(f"q{i}", e, "", None) for i, e in enumerate("aaaabbc")]
    picked = bench.pick_latency_examples(examples, 3)
    assert [ex.expert for ex in picked] == ["a", "b", "c"]
    assert len(bench.pick_latency_examples(examples, 100)) == len(examples)


def test_write_atomic_replaces(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_bad_arguments():
    assert bench.main(["--rewriters", "nope", "--quiet"]) == 2
