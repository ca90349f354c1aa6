"""``demo`` orchestration: each step runs the command of the same name, a
finished step is not redone, a killed training resumes, a failing step stops
the demo with its exit code. The steps themselves are stand-ins here; their own
tests run them for real."""

from __future__ import annotations

import json

import pytest

from calibration import calibrate
from commands import bench, demo
from training import train
from training.checkpoint import checkpoint_path


@pytest.fixture
def steps(monkeypatch):
    """Stand-ins for train, calibrate and bench that record their arguments and
    write what the real commands would leave behind."""
    calls: list[tuple[str, list[str]]] = []
    codes = {"train": 0, "calibrate": 0, "bench": 0}

    def fake(step, written, content):
        """A command that records its call and, when it succeeds, writes ``written`` in its --out."""
        def main(argv):
            calls.append((step, argv))
            if codes[step] == 0:
                out = demo.Path(argv[argv.index("--out") + 1])
                out.mkdir(parents=True, exist_ok=True)
                (out / written).write_bytes(content)
            return codes[step]
        return main

    fake_train = fake("train", "adapters.safetensors", b"weights")
    fake_calibrate = fake("calibrate", "calibration.yaml", b"layer: 1\n")
    fake_bench = fake("bench", "results.json", json.dumps({"summary": "all good"}).encode())

    monkeypatch.setattr(train, "main", fake_train)
    monkeypatch.setattr(calibrate, "main", fake_calibrate)
    monkeypatch.setattr(bench, "main", fake_bench)
    monkeypatch.setattr(bench, "format_summary", lambda results: results["summary"])
    return calls, codes


def test_a_fresh_demo_trains_calibrates_and_benches(steps, tmp_path, capsys):
    calls, _ = steps
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--bench-queries", "3", "--latency-queries", "1"]) == 0
    assert [name for name, _ in calls] == ["train", "calibrate", "bench"]
    train_argv, calibrate_argv, bench_argv = (argv for _, argv in calls)
    assert "--overwrite" in train_argv and "--resume" not in train_argv
    assert calibrate_argv[calibrate_argv.index("--adapter") + 1] == str(out / "run")
    assert bench_argv[bench_argv.index("--calibration") + 1] == str(out / "calibration")
    assert bench_argv[bench_argv.index("--heldout") + 1] == "3"
    printed = capsys.readouterr().out
    assert "all good" in printed and str(out / "bench" / "report.md") in printed


def test_a_second_demo_keeps_what_is_done(steps, tmp_path):
    calls, _ = steps
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out)]) == 0
    calls.clear()
    assert demo.main(["--out", str(out)]) == 0
    assert [name for name, _ in calls] == ["bench"]
    calls.clear()
    assert demo.main(["--out", str(out), "--fresh"]) == 0
    assert [name for name, _ in calls] == ["train", "calibrate", "bench"]


def test_a_killed_training_resumes_from_its_checkpoint(steps, tmp_path):
    calls, _ = steps
    run_dir = tmp_path / "demo" / "run"
    run_dir.mkdir(parents=True)
    checkpoint_path(run_dir).write_bytes(b"checkpoint")
    assert demo.main(["--out", str(tmp_path / "demo")]) == 0
    train_argv = calls[0][1]
    assert "--resume" in train_argv and "--overwrite" not in train_argv


@pytest.mark.parametrize("failing, ran", [
    ("train", ["train"]),
    ("calibrate", ["train", "calibrate"]),
    ("bench", ["train", "calibrate", "bench"]),
])
def test_a_failing_step_stops_the_demo_with_its_code(steps, tmp_path, failing, ran):
    calls, codes = steps
    codes[failing] = 3
    assert demo.main(["--out", str(tmp_path / "demo")]) == 3
    assert [name for name, _ in calls] == ran
