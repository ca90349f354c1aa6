"""Fit on the calibration set and score on the held-out set, for every layer at
both positions; pick the best by held-out accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from lazarus_cot_router.hidden import POSITIONS

from .collect import HiddenSet
from .fit import DirectionFit, evaluate_fit, fit_directions


@dataclass
class SweepRow:
    layer: int
    position: str
    accuracy: float  # argmax of the scaled projections
    routed_accuracy: float  # argmax and above its threshold (what route() returns)
    passthrough_rate: float
    calib_accuracy: float
    per_expert: dict = field(default_factory=dict)


@dataclass
class SweepResult:
    rows: list[SweepRow]
    best: SweepRow
    fit: DirectionFit  # the fit at the best layer and position
    experts: list[str]
    fits: dict = field(default_factory=dict, repr=False)  # (layer, position) -> DirectionFit

    def table(self) -> list[dict]:
        return [
            {
                "layer": r.layer,
                "position": r.position,
                "heldout_accuracy": round(r.accuracy, 4),
                "heldout_routed_accuracy": round(r.routed_accuracy, 4),
                "passthrough_rate": round(r.passthrough_rate, 4),
                "calib_accuracy": round(r.calib_accuracy, 4),
            }
            for r in self.rows
        ]

    def restricted_to(self, position: str) -> "SweepResult":
        """The same sweep with the best chosen among ``position``'s rows only
        (every row is kept for the table and plots)."""
        candidates = [r for r in self.rows if r.position == position]
        if not candidates:
            raise ValueError(f"the sweep has no rows at {position!r}")
        best = max(candidates, key=_rank)
        return SweepResult(self.rows, best, self.fits[best.layer, best.position], self.experts, self.fits)

    def curve(self, position: str, key: str = "accuracy") -> list[float]:
        return [getattr(r, key) for r in self.rows if r.position == position]


def _rank(row: SweepRow) -> tuple:
    # Ties go to the decision route() makes, then to the position known before
    # any token is generated, then to the shallowest layer (less to compute).
    return (row.accuracy, row.routed_accuracy, row.position == "prompt_last", -row.layer)


def sweep_layers(
    calib: HiddenSet,
    heldout: HiddenSet,
    experts: Sequence[str] | None = None,
    positions: Sequence[str] = POSITIONS,
    layers: Sequence[int] | None = None,
    shrinkage: float | None = None,
) -> SweepResult:
    """Every (layer, position): fit on ``calib``, evaluate on ``heldout``
    (``shrinkage``: whitened directions, see :mod:`calibration.fit`)."""
    experts = list(experts) if experts is not None else sorted(set(calib.labels))
    present = set(calib.labels)
    missing = [e for e in experts if e not in present]
    if missing:
        raise ValueError(f"no calibration examples for {missing}")
    layers = range(calib.num_layers) if layers is None else layers
    rows, fits = [], {}
    for position in positions:
        for layer in layers:
            fit = fit_directions(calib.at(layer, position), calib.labels, experts, shrinkage)
            held = evaluate_fit(fit, heldout.at(layer, position), heldout.labels)
            train = evaluate_fit(fit, calib.at(layer, position), calib.labels)
            rows.append(
                SweepRow(
                    layer=layer,
                    position=position,
                    accuracy=held["accuracy"],
                    routed_accuracy=held["routed_accuracy"],
                    passthrough_rate=held["passthrough_rate"],
                    calib_accuracy=train["accuracy"],
                    per_expert=held["per_expert"],
                )
            )
            fits[layer, position] = fit
    best = max(rows, key=_rank)
    return SweepResult(rows=rows, best=best, fit=fits[best.layer, best.position], experts=experts, fits=fits)


def format_table(result: SweepResult) -> str:
    """The sweep as text: one line per layer, both positions side by side."""
    by_key = {(r.layer, r.position): r for r in result.rows}
    layers = sorted({r.layer for r in result.rows})
    positions = [p for p in POSITIONS if any(r.position == p for r in result.rows)]
    head = "layer " + " ".join(f"{p + ' acc':>18} {'routed':>7}" for p in positions)
    lines = [head]
    for layer in layers:
        cells = []
        for p in positions:
            r = by_key.get((layer, p))
            mark = "*" if r is result.best else " "
            cells.append(f"{r.accuracy:>17.1%}{mark} {r.routed_accuracy:>7.1%}" if r else " " * 26)
        lines.append(f"{layer:>5} " + " ".join(cells))
    for p in positions:
        top = max((r for r in result.rows if r.position == p), key=_rank)
        lines.append(f"best at {p}: layer {top.layer}, held-out accuracy {top.accuracy:.1%}")
    b = result.best
    lines.append(
        f"chosen: layer {b.layer}, {b.position}: held-out accuracy {b.accuracy:.1%} "
        f"(routed {b.routed_accuracy:.1%}, passthrough {b.passthrough_rate:.1%})"
    )
    return "\n".join(lines)


def format_per_expert(row: SweepRow) -> str:
    lines = [f"{'expert':<14} {'n':>4} {'agree':>7} {'routed':>7} {'AUROC':>7}"]
    for name, m in row.per_expert.items():
        lines.append(f"{name:<14} {m['n']:>4} {m['recall']:>7.1%} {m['routed_recall']:>7.1%} {m['auroc']:>7.3f}")
    return "\n".join(lines)
