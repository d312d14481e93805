"""Hard negatives in the learned trigger's fit: a drum's silence on another drum's attack.

A phantom snare on a hi-hat stroke is the snare output wrong on the frames where the hi-hat's
attack is labelled struck and the snare's is not. Weighting those whole frames (sample weights)
also weighs the hi-hat's positives there, and measured, the network then fires more on every
drum (docs/default-preset.md). HardNegativeMLP weighs only the negative outputs: in each frame
where one drum is struck, the loss of every drum that is not struck counts `weight` times; the
struck drums, the articulation outputs and every other frame count as before.
"""
from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier


def hard_negatives(struck: np.ndarray, drums: int) -> np.ndarray:
    """(frames, drums) bool: drum columns not struck in a frame where another drum is struck.
    struck: (frames, >= drums) labels > 0, the drums first."""
    s = np.asarray(struck[:, :drums], bool)
    return ~s & s.any(axis=1, keepdims=True)


class HardNegativeMLP(MLPClassifier):
    """MLPClassifier (logistic outputs, log loss) whose output deltas of hard negatives (the first
    `drums` outputs) are multiplied by `hard_weight`. Set both attributes after construction."""

    drums: int = 0
    hard_weight: float = 1.0

    def _compute_loss_grad(self, layer, sw_sum, activations, deltas, coef_grads, intercept_grads):
        # the output layer's gradient is computed first, before it is propagated back: weighting
        # its deltas here weighs the whole network's gradient. A delta is (p - y) * sample weight
        # with 0 < p < 1, so a label is 1 where its delta is negative (a zero delta, a row left out
        # of the fit, stays zero whatever it is multiplied by).
        if layer == self.n_layers_ - 2 and self.drums and self.hard_weight != 1.0:
            d = deltas[layer]
            d[:, :self.drums][hard_negatives(d < 0, self.drums)] *= self.hard_weight
        super()._compute_loss_grad(layer, sw_sum, activations, deltas, coef_grads, intercept_grads)
