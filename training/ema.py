"""An exponential moving average of the trained weights (``TrainConfig.ema_decay``).

After every SFT step the average moves toward the model's trainable weights,
``average = decay * average + (1 - decay) * weights`` (the first step's weights
start it), and SFT ends on the average instead of the last step's weights. A
decay of 0.995 gives the last 200 steps most of the weight. The average travels
in the run's checkpoint (``ema.<name>`` arrays), so a resumed run ends on the
same weights as one never stopped.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map, tree_unflatten

#: The prefix of the average's arrays in a checkpoint.
PREFIX = "ema."


@mx.compile
def _moved(average: mx.array, weight: mx.array, rate: mx.array) -> mx.array:
    # Fused: separate ops would make temporaries the size of the trained blocks at every step.
    return average + rate * (weight - average)


class WeightEMA:
    """The moving average of a model's trainable weights, with ``decay`` in (0, 1)."""

    def __init__(self, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"an average's decay must be above 0 and below 1, not {decay!r}")
        self.decay = decay
        self.weights: dict | None = None

    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s trainable weights after a step."""
        current = model.trainable_parameters()
        if self.weights is None:
            self.weights = current
        else:
            rate = mx.array(1 - self.decay, dtype=mx.float32)
            self.weights = tree_map(lambda a, w: _moved(a, w, rate.astype(w.dtype)), self.weights, current)
        mx.eval(self.weights)

    def apply(self, model: nn.Module) -> None:
        """Give ``model`` the averaged weights (nothing to do before the first update)."""
        if self.weights is not None:
            model.update(self.weights)

    def arrays(self) -> dict[str, mx.array]:
        """The average as checkpoint arrays, keyed ``ema.<name>``."""
        return {PREFIX + k: v for k, v in tree_flatten(self.weights or {})}

    def load(self, arrays: dict[str, mx.array]) -> None:
        """Take back the average from checkpoint arrays written by :meth:`arrays`."""
        own = [(k[len(PREFIX):], v) for k, v in arrays.items() if k.startswith(PREFIX)]
        self.weights = tree_unflatten(own) if own else None
