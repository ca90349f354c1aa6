"""One-vs-rest expert directions from hidden states (Lazarus's calibration rule).

For each expert: ``direction = normalize(mean(pos) - mean(neg))``; the threshold
is the midpoint of the two projected means; ``scale = 5 / (mean_pos_proj -
threshold)`` and ``bias = -threshold * scale``, so the mean positive lands at
logit 5 and the threshold at 0. The multi-class decision is the argmax of the
scaled projections.

With ``shrinkage`` the mean difference is first whitened by the pooled
within-expert covariance, shrunk toward a scaled identity (one-vs-rest LDA):
``direction = normalize(S^-1 (mean(pos) - mean(neg)))``. The result has the
same fields (one direction, scale, bias and threshold per expert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

TARGET_LOGIT = 5.0
_EPS = 1e-12


@dataclass
class DirectionFit:
    experts: list[str]
    directions: np.ndarray  # [E, D], unit norm
    thresholds: np.ndarray  # [E], in projection space
    scales: np.ndarray  # [E]
    biases: np.ndarray  # [E]
    mean_pos: np.ndarray  # [E], projected
    mean_neg: np.ndarray  # [E], projected
    counts: np.ndarray  # [E], positives per expert

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        """Scaled projections ``[N, E]``."""
        return (np.asarray(hidden, dtype=np.float32) @ self.directions.T) * self.scales + self.biases

    def predict(self, hidden: np.ndarray, thresholded: bool = False) -> list[str | None]:
        """Argmax expert per row; with ``thresholded``, ``None`` where the best
        score is not positive (passthrough)."""
        scores = self.logits(hidden)
        best = scores.argmax(axis=1)
        return [
            None if thresholded and scores[i, j] <= 0 else self.experts[j] for i, j in enumerate(best)
        ]


def fit_directions(
    hidden: np.ndarray, labels: Sequence[str], experts: Sequence[str] | None = None, shrinkage: float | None = None
) -> DirectionFit:
    """Fit one direction per expert on ``hidden`` ``[N, D]`` with gold
    ``labels``. ``experts`` (default: the sorted distinct labels) sets the
    order; each needs at least one positive and one negative example.
    ``shrinkage`` in (0, 1] whitens the directions (see the module doc)."""
    x = np.asarray(hidden, dtype=np.float64)
    labels = np.asarray(list(labels))
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"hidden must be [N, D] with N = len(labels), got {list(x.shape)} and {labels.shape[0]} labels")
    experts = sorted(set(labels.tolist())) if experts is None else list(experts)
    if len(experts) < 2:
        raise ValueError("one-vs-rest needs at least two experts")
    whiten = None if shrinkage is None else within_class_precision(x, labels, shrinkage)
    rows = {}
    for name in experts:
        pos, neg = x[labels == name], x[labels != name]
        if len(pos) == 0 or len(neg) == 0:
            raise ValueError(f"expert {name!r} has {len(pos)} positive and {len(neg)} negative examples; need both")
        mu_pos, mu_neg = pos.mean(axis=0), neg.mean(axis=0)
        diff = mu_pos - mu_neg if whiten is None else whiten @ (mu_pos - mu_neg)
        norm = np.linalg.norm(diff)
        direction = diff / norm if norm > _EPS else np.zeros_like(diff)
        p_pos, p_neg = float(mu_pos @ direction), float(mu_neg @ direction)
        threshold = (p_pos + p_neg) / 2
        gap = p_pos - threshold
        scale = TARGET_LOGIT / gap if gap > _EPS else 0.0
        rows[name] = (direction, threshold, scale, -threshold * scale, p_pos, p_neg, len(pos))
    cols = list(zip(*(rows[name] for name in experts)))
    f32 = lambda v: np.asarray(v, dtype=np.float32)
    return DirectionFit(
        experts=experts,
        directions=f32(np.stack(cols[0])),
        thresholds=f32(cols[1]),
        scales=f32(cols[2]),
        biases=f32(cols[3]),
        mean_pos=f32(cols[4]),
        mean_neg=f32(cols[5]),
        counts=np.asarray(cols[6]),
    )


def within_class_precision(x: np.ndarray, labels: np.ndarray, shrinkage: float) -> np.ndarray:
    """Inverse of the pooled within-class covariance, shrunk toward
    ``mean variance * I`` by ``shrinkage``."""
    if not 0 < shrinkage <= 1:
        raise ValueError(f"shrinkage must be in (0, 1], got {shrinkage}")
    centered = x.copy()
    for name in set(labels.tolist()):
        mask = labels == name
        centered[mask] -= x[mask].mean(axis=0)
    cov = centered.T @ centered / max(len(x) - 1, 1)
    target = np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return np.linalg.inv((1 - shrinkage) * cov + shrinkage * target + _EPS * np.eye(cov.shape[0]))


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties);
    NaN when one class is empty."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def evaluate_fit(fit: DirectionFit, hidden: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy (argmax), routed accuracy (argmax above threshold), the
    passthrough rate, and per expert its recall and AUROC."""
    labels = list(labels)
    gold = np.asarray(labels)
    scores = fit.logits(hidden)
    best = scores.argmax(axis=1)
    chosen = np.asarray(fit.experts)[best]
    above = scores[np.arange(len(best)), best] > 0
    correct = chosen == gold
    per_expert = {}
    for j, name in enumerate(fit.experts):
        mask = gold == name
        per_expert[name] = {
            "n": int(mask.sum()),
            "recall": float(correct[mask].mean()) if mask.any() else float("nan"),
            "routed_recall": float((correct & above)[mask].mean()) if mask.any() else float("nan"),
            "auroc": auroc(scores[:, j], mask),
        }
    n = max(len(labels), 1)
    return {
        "n": len(labels),
        "accuracy": float(correct.sum() / n),
        "routed_accuracy": float((correct & above).sum() / n),
        "passthrough_rate": float((~above).sum() / n),
        "per_expert": per_expert,
    }
