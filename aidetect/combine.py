"""The final probability from the two branches: the fused model's logit and the real-only branch's score.

    logit = cnn_weight * fused logit + real_only_weight * (real-only score - centre) / scale + bias

A few numbers, fitted by logistic regression on a fold the fused model did not train on (`fit_combination`)
and kept only when they win on held-out generators (`aidetect calibrate --combine-on`); without them the
final probability is the fused model's and the real-only score is reported beside it, not used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np


def sigmoid(value: float) -> float:
    """1 / (1 + e^-value), without overflow for large negative values."""
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))


@dataclass(frozen=True)
class Combination:
    """Weights of the two branches in the final logit (the default: the fused model alone)."""

    cnn_weight: float = 1.0
    real_only_weight: float = 0.0
    centre: float = 0.0  # the real-only score's median on the fitting fold's real photos
    scale: float = 1.0  # and its spread there (standard deviation)
    bias: float = 0.0

    @property
    def uses_real_only(self) -> bool:
        return self.real_only_weight != 0.0

    def logit(self, cnn_logit: float, real_only_score: float | None) -> float:
        """The final logit; an image the real-only branch could not score (too small) gets the fused model's
        logit alone, scaled as the combination scales it."""
        value = self.cnn_weight * cnn_logit + self.bias
        if real_only_score is not None and math.isfinite(real_only_score):
            value += self.real_only_weight * (real_only_score - self.centre) / self.scale
        return value

    def probability(self, cnn_logit: float, real_only_score: float | None) -> float:
        return sigmoid(self.logit(cnn_logit, real_only_score))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Combination":
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})


def fit_combination(cnn_logits: np.ndarray, real_only_scores: np.ndarray, labels: np.ndarray,
                    balanced: bool = True) -> Combination:
    """Logistic regression of the labels (1 = generated) on the two branches' scores, the real-only score
    standardised on the fold's real photos. `balanced` weighs both classes alike, as the AP figures do."""
    from sklearn.linear_model import LogisticRegression

    x_cnn = np.asarray(cnn_logits, np.float64)
    x_real = np.asarray(real_only_scores, np.float64)
    y = np.asarray(labels, int)
    if len(np.unique(y)) != 2 or not (len(x_cnn) == len(x_real) == len(y)):
        raise ValueError("fitting a combination needs real and generated images with both branches' scores")
    reals = x_real[y == 0]
    centre, scale = float(np.median(reals)), float(reals.std()) or 1.0
    features = np.stack([x_cnn, (x_real - centre) / scale], 1)
    fitted = LogisticRegression(C=1.0, class_weight="balanced" if balanced else None).fit(features, y)
    (a, b), c = fitted.coef_[0], fitted.intercept_[0]
    return Combination(float(a), float(b), centre, scale, float(c))
