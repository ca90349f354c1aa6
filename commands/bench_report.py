"""The bench's outputs: ``results.json``, ``report.md`` and PNG plots.

Every file is written atomically (:mod:`lazarus_cot_router.atomic`). matplotlib is imported only here, only when plotting; without
it the report says so and the other outputs are still written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

from lazarus_cot_router.atomic import atomic_write

UNKNOWN, UNPARSED = "unknown", "unparsed"


def confusion_matrix(rows: Sequence[dict], labels: Sequence[str]) -> dict:
    """``{gold: {predicted: count}}`` over ``labels`` + unknown + unparsed."""
    columns = [*labels, UNKNOWN, UNPARSED]
    order = {name: i for i, name in enumerate(labels)}
    gold = sorted({r["want_expert"] for r in rows}, key=lambda g: (order.get(g, len(order)), g))
    matrix = {g: {p: 0 for p in columns} for g in gold}
    for r in rows:
        # A query routed right counts on the diagonal: that includes a chat query the host passes
        # through because no line could be executed for it.
        got = r["want_expert"] if r["expert"] else r["got_expert"]
        matrix[r["want_expert"]][UNPARSED if got is None else got if got in labels else UNKNOWN] += 1
    return {"labels": columns, "rows": matrix}


def compare(rewriters: dict, trained: str = "trained-cot", baseline: str = "few-shot") -> dict:
    """The headline ratios of ``trained`` against ``baseline``."""
    t, b = rewriters.get(trained, {}), rewriters.get(baseline, {})
    out = {"trained": trained, "baseline": baseline, "extra_instruction_expert_accuracy_points": None,
           "expert_accuracy_points": None, "latency_p50_speedup": None, "trained_batched_over_sequential": None}
    if t.get("available"):
        out["trained_batched_over_sequential"] = t["throughput"]["batched_over_sequential"]
    if not (t.get("available") and b.get("available")):
        return out
    out["expert_accuracy_points"] = 100 * (t["accuracy"]["expert_accuracy"] - b["accuracy"]["expert_accuracy"])
    ti, bi = t["accuracy"].get("extra_instruction", {}), b["accuracy"].get("extra_instruction", {})
    if ti.get("n") and bi.get("n"):
        out["extra_instruction_expert_accuracy_points"] = 100 * (ti["expert_accuracy"] - bi["expert_accuracy"])
    if t["latency"]["p50_s"] and b["latency"]["p50_s"]:
        out["latency_p50_speedup"] = b["latency"]["p50_s"] / t["latency"]["p50_s"]
    return out


def format_summary(results: dict) -> str:
    """A few lines for the demo: each rewriter's accuracy, then the ratios."""
    lines = [f"{'rewriter':20} {'expert':>7} {'exec':>7} {'+instr':>7} {'p50':>8} {'batch q/s':>10}"]
    for name, r in results["rewriters"].items():
        if not r.get("available"):
            lines.append(f"{name:20} {r.get('reason', 'not available')}")
            continue
        a, instr = r["accuracy"], r["accuracy"].get("extra_instruction", {})
        lines.append(f"{name:20} {a['expert_accuracy']:7.1%} {a['execution_accuracy']:7.1%} "
                     f"{_pct(instr.get('expert_accuracy') if instr.get('n') else None):>7} "
                     f"{_secs(r['latency']['p50_s']):>8} {_num(r['throughput']['batched_qps']):>10}")
    c = results.get("comparison", {})
    parts = []
    if c.get("extra_instruction_expert_accuracy_points") is not None:
        parts.append(f"{c['extra_instruction_expert_accuracy_points']:+.1f} points expert accuracy on extra-instruction queries")
    if c.get("latency_p50_speedup"):
        parts.append(f"p50 latency {c['latency_p50_speedup']:.1f}x lower")
    if c.get("trained_batched_over_sequential"):
        parts.append(f"batched throughput {c['trained_batched_over_sequential']:.1f}x sequential")
    if parts:
        lines.append(f"{c['trained']} vs {c['baseline']}: " + "; ".join(parts))
    return "\n".join(lines)


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}ms" if x < 1 else f"{x:.2f}s"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def write_outputs(results: dict, out: Path) -> Path:
    """Plots first (their names go into the results), then JSON and report."""
    try:
        results["plots"] = write_plots(results, out)
    except ImportError:
        results["plots"] = []
        results["plots_skipped"] = "matplotlib cannot be imported (a dependency: pip install matplotlib)"
    atomic_write(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    atomic_write(out / "report.md", format_report(results))
    return out


def available(results: dict) -> dict:
    return {name: r for name, r in results["rewriters"].items() if r.get("available")}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _warmups(n: int) -> str:
    return f" and {n} warm-up call(s) per rewriter" if n else ""


def _ms(x) -> str:
    return "-" if x is None else f"{1000 * x:.0f} ms"


def _x(x) -> str:
    return "-" if x is None else f"{x:.1f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def format_report(results: dict) -> str:
    cfg, machine, rws = results["config"], results["machine"], available(results)
    c = results["comparison"]
    adapter = cfg["adapter"] or "none (trained-cot runs the untrained base model)"
    queries = cfg["queries"] or (f"{cfg['heldout']} held-out (seed {cfg['seed']})"
                                 + (" + the acceptance cases" if cfg["acceptance"] else ""))
    out = ["# Bench: trained router vs few-shot rewriter", "",
           f"- command: `{results['command']}`", f"- when: {results['timestamp']}",
           f"- model: `{cfg['model']}`, adapter: `{adapter}`, calibration: `{cfg['calibration'] or 'none'}`",
           (f"- queries: {cfg['n_queries']} ({queries}); latency on {cfg['latency_queries']} of them, "
            f"timed after the batched pass{_warmups(cfg['warmup'])}; batches of {cfg['batch_size']} "
            f"({cfg.get('few_shot_batch_size', cfg['batch_size'])} for few-shot); token limits: "
            f"{cfg.get('max_tokens')} (router), {cfg.get('few_shot_max_tokens')} (few-shot)"),
           (f"- machine: {machine.get('platform')}, {machine.get('cpu_count')} CPUs, mlx {machine.get('mlx')} "
            f"on {machine.get('device')}, BLAS: {machine.get('blas', 'unknown')}, load average at the end: "
            f"{', '.join(f'{x:.1f}' for x in machine.get('load_average', ())) or 'unknown'}"),
           f"- bench time: {results.get('bench_seconds', 0):.0f} s", ""]
    out += ["## Headline", ""]
    out += _table(["measure", "value"], [
        ["extra-instruction expert accuracy, trained - few-shot",
         "-" if c["extra_instruction_expert_accuracy_points"] is None else f"{c['extra_instruction_expert_accuracy_points']:+.1f} points"],
        ["expert accuracy, trained - few-shot",
         "-" if c["expert_accuracy_points"] is None else f"{c['expert_accuracy_points']:+.1f} points"],
        ["p50 latency speedup, few-shot / trained", _x(c["latency_p50_speedup"])],
        ["trained router: batched / sequential throughput", _x(c["trained_batched_over_sequential"])],
    ])
    out += ["", "## Accuracy", ""]
    out += _table(["rewriter", "n", "format", "expert", "spec", "execution", "+instruction n", "+instruction expert",
                   "+instruction execution"],
                  [[name, r["accuracy"]["n"], *(_pct(r["accuracy"][f"{k}_accuracy"]) for k in ("format", "expert", "spec", "execution")),
                    r["accuracy"].get("extra_instruction", {}).get("n", 0),
                    _pct(r["accuracy"].get("extra_instruction", {}).get("expert_accuracy")),
                    _pct(r["accuracy"].get("extra_instruction", {}).get("execution_accuracy"))]
                   for name, r in rws.items()])
    out += ["", "Expert accuracy per gold expert:", ""]
    experts = sorted({e for r in rws.values() for e in r["accuracy"]["per_expert"]}, key=_order(results))
    out += _table(["expert", "n", *rws], [
        [e, next((r["accuracy"]["per_expert"][e]["n"] for r in rws.values() if e in r["accuracy"]["per_expert"]), 0),
         *(_pct(r["accuracy"]["per_expert"].get(e, {}).get("expert_accuracy")) for r in rws.values())]
        for e in experts])
    out += ["", "## Speed, tokens, memory", ""]
    out += _table(["rewriter", "p50", "p95", "sequential q/s", "batched q/s", "batched / sequential",
                   "prompt tok/q", "prefilled tok/q", "generated tok/q", "MLX peak MB", "RSS peak MB"],
                  [[name, _ms(r["latency"]["p50_s"]), _ms(r["latency"]["p95_s"]),
                    f"{r['throughput']['sequential_qps'] or 0:.2f}", f"{r['throughput']['batched_qps'] or 0:.2f}",
                    _x(r["throughput"]["batched_over_sequential"]),
                    f"{r['tokens']['prompt_tokens']:.0f}", f"{r['tokens']['prefill_tokens']:.0f}",
                    f"{r['tokens']['generated_tokens']:.1f}",
                    f"{r['memory']['mlx_peak_mb']:.0f}", f"{r['memory']['rss_peak_mb']:.0f}"]
                   for name, r in rws.items()])
    out += ["", ("Sequential: one `rewrite` per query, round-robin across rewriters. Batched: `rewrite_batch` "
                 "(the trained router's system prompt is prefilled once and shared; for the few-shot "
                 "rewriter this pass caches the prompt part before the query, which gives the same actions "
                 "sooner, while its sequential latency is timed as Lazarus runs it, the whole prompt prefilled "
                 "for every query: its 'prefilled tok/q' column). Peak memory is the maximum over each "
                 "rewriter's own calls (MLX peak reset before each call; RSS high-water mark reset through "
                 "/proc/self/clear_refs, which includes the loaded weights)."), ""]
    missing = {n: r for n, r in results["rewriters"].items() if not r.get("available")}
    if missing:
        out += ["Not run:", ""] + [f"- `{n}`: {r['reason']}" for n, r in missing.items()] + [""]
    out += ["## Confusion (gold expert x predicted expert)", ""]
    for name, r in rws.items():
        conf = r["confusion"]
        out += [f"### {name}", ""]
        out += _table(["gold \\ predicted", *conf["labels"]],
                      [[g, *(row[p] or "." for p in conf["labels"])] for g, row in conf["rows"].items()])
        out.append("")
    if results.get("plots"):
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in results["plots"]] + [""]
    elif results.get("plots_skipped"):
        out += [f"Plots skipped: {results['plots_skipped']}.", ""]
    out += ["## Failures (first 10 per rewriter)", ""]
    for name, r in rws.items():
        out.append(f"- **{name}** ({len(r['failures'])} not executed correctly)")
        out += [f"  - {f['query'][:70]!r}: want `{f['want_expert']}: {f['want_spec']}`, got {f['raw'][:80]!r}"
                for f in r["failures"][:10]]
    return "\n".join(out) + "\n"


def _order(results: dict):
    experts = results.get("experts", [])
    return lambda e: (experts.index(e) if e in experts else len(experts), e)


def write_plots(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rws = available(results)
    if not rws:
        return []
    written = []
    for name, draw in (("accuracy.png", plot_accuracy), ("latency.png", plot_latency),
                       ("confusion.png", plot_confusion)):
        fig = draw(plt, rws, results)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write(out / name, buf.getvalue())
        written.append(name)
    return written


def plot_accuracy(plt, rws: dict, results: dict):
    experts = sorted({e for r in rws.values() for e in r["accuracy"]["per_expert"]}, key=_order(results))
    groups = ["overall", *experts, "+instruction"]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(groups) * len(rws) / 2), 4))
    width = 0.8 / len(rws)
    for k, (name, r) in enumerate(rws.items()):
        a = r["accuracy"]
        values = [a["expert_accuracy"], *(a["per_expert"].get(e, {}).get("expert_accuracy", 0) for e in experts),
                  a.get("extra_instruction", {}).get("expert_accuracy", 0)]
        ax.bar([i + k * width for i in range(len(groups))], values, width, label=name)
    ax.set_xticks([i + width * (len(rws) - 1) / 2 for i in range(len(groups))], groups, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("expert accuracy")
    ax.set_title("Expert accuracy per rewriter and gold expert")
    ax.legend(fontsize=8)
    return fig


def plot_latency(plt, rws: dict, results: dict):
    fig, ax = plt.subplots(figsize=(7, 4))
    samples = [[1000 * s for s in r["latency"]["samples_s"]] or [float("nan")] for r in rws.values()]
    ax.boxplot(samples, showfliers=True)
    for i, values in enumerate(samples, start=1):
        ax.scatter([i] * len(values), values, s=8, alpha=0.5)
    ax.set_xticks(range(1, len(rws) + 1), list(rws), rotation=15)
    ax.set_yscale("log")
    ax.set_ylabel("latency per query (ms, log)")
    ax.set_title("Sequential rewrite latency")
    return fig


def plot_confusion(plt, rws: dict, results: dict):
    fig, axes = plt.subplots(1, len(rws), figsize=(4.2 * len(rws), 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], rws.items()):
        conf = r["confusion"]
        gold, labels = list(conf["rows"]), conf["labels"]
        grid = [[conf["rows"][g][p] for p in labels] for g in gold]
        ax.imshow(grid, cmap="Blues")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(gold)), gold, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("gold", fontsize=8)
    fig.tight_layout()
    return fig
