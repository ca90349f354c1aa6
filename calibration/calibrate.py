"""``lazarus-cot-router calibrate``: fit expert directions from hidden states.

Collects the hidden states of every layer at the last prompt token and at the
(teacher-forced) first token of the expert name, on the ``calib`` split plus the
experts' calibration prompts; fits one-vs-rest directions per layer and
position; scores them on the ``heldout`` split; writes the best as
``directions.safetensors`` + ``calibration.yaml`` (loadable with
:meth:`lazarus_cot_router.hidden_route.HiddenRouter.load`), the sweep as
``sweep.yaml`` and, with matplotlib installed, PNG plots.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

DEFAULT_OUT = "runs/calibration"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lazarus-cot-router calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="embedded", help="model SPEC (default: embedded)")
    p.add_argument("--adapter", default=None, help="mlx-lm adapter dir (default: the base model)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output dir (default: {DEFAULT_OUT})")
    p.add_argument("--calib-examples", type=int, default=240, help="calib split examples (default: 240)")
    p.add_argument("--heldout-examples", type=int, default=240, help="heldout split examples (default: 240)")
    p.add_argument(
        "--position",
        choices=("prompt_last", "expert_token", "auto"),
        default="prompt_last",
        help="position of the saved router (default: prompt_last, known before generating; "
        "auto: the best of both by held-out accuracy; expert_token is teacher-forced, so it sees the gold first token)",
    )
    p.add_argument(
        "--whiten",
        type=float,
        default=None,
        metavar="SHRINKAGE",
        help="whiten directions by the within-expert covariance shrunk by SHRINKAGE in (0, 1], e.g. 0.2 "
        "(one-vs-rest LDA; default: Lazarus's plain mean difference)",
    )
    p.add_argument("--save-hidden", action="store_true", help="also write the collected hidden states (hidden.npz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--no-calibration-prompts", action="store_true", help="fit on the calib split only")
    p.add_argument("--no-shared-prefix", action="store_true", help="prefill the full prompt per row (slower; for measurement)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run_calibration(args, model=None, tokenizer=None, log=print) -> dict:
    from lazarus_cot_router.adapters import adapter_query_layout
    from lazarus_cot_router.hidden_route import HiddenRouter, model_identity
    from lazarus_cot_router.plugins import get_experts
    from training.data import generate_split

    from .collect import calibration_examples, collect_hidden, dedupe
    from .sweep import format_per_expert, format_table, sweep_layers

    timings = {}
    t0 = time.perf_counter()
    if model is None:
        from lazarus_cot_router.models import load

        model, tokenizer = load(args.model, adapter_path=args.adapter)
    timings["load_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    identity = model_identity(args.model, args.adapter)
    timings["identity_s"] = time.perf_counter() - t

    experts = get_experts()
    calib = list(generate_split("calib", args.calib_examples, args.seed))
    if not args.no_calibration_prompts:
        calib += calibration_examples(experts)
    calib = dedupe(calib)
    heldout = dedupe(generate_split("heldout", args.heldout_examples, args.seed))
    names = [n for n in experts if n in {ex.expert for ex in calib}]
    kwargs = dict(batch_size=args.batch_size, shared_prefix=not args.no_shared_prefix, progress=not args.quiet,
                  layout=adapter_query_layout(args.adapter))
    calib_h = collect_hidden(model, tokenizer, experts, calib, desc="calib", **kwargs)
    held_h = collect_hidden(model, tokenizer, experts, heldout, desc="heldout", **kwargs)
    timings["collect_calib_s"], timings["collect_heldout_s"] = calib_h.seconds, held_h.seconds
    log(
        f"collected {calib_h.num_layers} layers x 2 positions: {len(calib_h)} calib and {len(held_h)} held-out queries "
        f"in {calib_h.seconds + held_h.seconds:.1f}s ({calib_h.tokens + held_h.tokens} tokens, "
        f"prefix of {calib_h.meta['prefix_tokens']} tokens {'shared' if kwargs['shared_prefix'] else 'repeated'})"
    )

    t = time.perf_counter()
    result = sweep_layers(calib_h, held_h, names, shrinkage=args.whiten)
    if args.position != "auto":
        result = result.restricted_to(args.position)
    timings["sweep_s"] = time.perf_counter() - t
    log(format_table(result))
    log(format_per_expert(result.best))

    best, fit = result.best, result.fit
    out = Path(args.out)
    router = HiddenRouter(
        experts=fit.experts,
        directions=fit.directions,
        scales=fit.scales,
        biases=fit.biases,
        thresholds=fit.thresholds,
        layer=best.layer,
        position=best.position,
        identity=identity,
        metrics={
            "heldout_accuracy": best.accuracy,
            "heldout_routed_accuracy": best.routed_accuracy,
            "passthrough_rate": best.passthrough_rate,
            "calib_accuracy": best.calib_accuracy,
            "calib_examples": len(calib_h),
            "heldout_examples": len(held_h),
            "seed": args.seed,
            "method": "mean_difference" if args.whiten is None else f"whitened(shrinkage={args.whiten})",
            "per_expert": best.per_expert,
        },
    )
    router.save(out)
    if args.save_hidden:
        save_hidden(out / "hidden.npz", calib_h, held_h)
    plots = [] if args.no_plots else write_plots(result, out, args, log)
    timings["total_s"] = time.perf_counter() - t0
    summary = {
        "layer": best.layer,
        "position": best.position,
        "heldout_accuracy": best.accuracy,
        "num_layers": calib_h.num_layers,
        "method": router.metrics["method"],
        "identity": identity,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "sweep": result.table(),
        "per_expert": best.per_expert,
        "plots": [str(p) for p in plots],
    }
    (out / "sweep.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
    log(f"saved router: layer {best.layer}, position {best.position} -> {out}/calibration.yaml ({timings['total_s']:.1f}s total)")
    return summary


def save_hidden(path: Path, calib, heldout) -> None:
    import numpy as np

    arrays = {}
    for name, hs in (("calib", calib), ("heldout", heldout)):
        for position, h in hs.hidden.items():
            arrays[f"{name}_{position}"] = h
        arrays[f"{name}_labels"] = np.asarray(hs.labels)
        arrays[f"{name}_queries"] = np.asarray(hs.queries)
    np.savez(path, **arrays)


def write_plots(result, out: Path, args, log) -> list[Path]:
    from .plots import have_matplotlib, plot_accuracy, plot_auroc

    if not have_matplotlib():
        log("matplotlib cannot be imported (a dependency: pip install matplotlib): no plots")
        return []
    who = f"{args.model}" + (f" + {Path(args.adapter).name}" if args.adapter else " (no adapter)")
    return [
        plot_accuracy(result, out / "accuracy_per_layer.png", title=f"Routing from hidden states: {who}"),
        plot_auroc(result, out / "auroc_per_expert.png"),
    ]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.calib_examples < 1 or args.heldout_examples < 1:
        print("calibrate: --calib-examples and --heldout-examples must be positive", file=sys.stderr)
        return 2
    if args.whiten is not None and not 0 < args.whiten <= 1:
        print("calibrate: --whiten must be in (0, 1]", file=sys.stderr)
        return 2
    try:
        run_calibration(args)
    except Exception as e:
        from lazarus_cot_router.models import ModelLoadError

        if isinstance(e, (ModelLoadError, FileNotFoundError, ValueError)):
            print(f"calibrate: {e}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
