"""PNG plots of a sweep (matplotlib, imported only here; the ``plots`` extra)."""

from __future__ import annotations

from pathlib import Path

from lazarus_cot_router.hidden import POSITIONS

from .sweep import SweepResult


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Held-out accuracy per layer, one line per position (argmax solid,
    thresholded dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for position, color in zip(POSITIONS, ("tab:blue", "tab:orange")):
        rows = [r for r in result.rows if r.position == position]
        if not rows:
            continue
        layers = [r.layer for r in rows]
        ax.plot(layers, [r.accuracy for r in rows], "o-", color=color, ms=3, label=f"{position} (argmax)")
        ax.plot(layers, [r.routed_accuracy for r in rows], "--", color=color, alpha=0.6, label=f"{position} (above threshold)")
    best = result.best
    ax.scatter([best.layer], [best.accuracy], s=120, facecolors="none", edgecolors="black", zorder=5, label="chosen")
    chance = 1 / max(len(result.experts), 1)
    ax.axhline(chance, color="gray", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("layer (output of decoder layer i)")
    ax.set_ylabel("held-out routing accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Expert routing from hidden states, per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_auroc(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Per-expert held-out AUROC (one-vs-rest) at the chosen layer and position."""
    plt = _pyplot()
    per = result.best.per_expert
    names = list(per)
    values = [per[n]["auroc"] for n in names]
    agree = [per[n]["recall"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], values, width=0.4, label="AUROC")
    ax.bar([i + 0.2 for i in x], agree, width=0.4, label="agreement with gold")
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    b = result.best
    ax.set_title(title or f"Per-expert held-out AUROC, layer {b.layer} ({b.position})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
