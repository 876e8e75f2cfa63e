"""Ridge least squares under a sum-to-one constraint, for a batch of small problems at once."""

from __future__ import annotations

import numpy as np

_FLOOR = 1e-9  # absolute ridge: a flat image (all residuals zero) still gets a finite, unique answer


def sum_to_one_solve(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """argmin_a ||y - X a||^2 + r ||a||^2 subject to sum(a) = 1, from the normal equations of each
    problem: `gram` B x M x M (X^T X), `cross` B x M (X^T y). The ridge r is `ridge` times the mean
    diagonal of the problem's Gram matrix, so that the answer does not depend on the residuals' scale.
    Returns B x M float64 (the constraint's Lagrange multiplier solved in closed form)."""
    gram = np.asarray(gram, np.float64)
    cross = np.asarray(cross, np.float64)
    size = gram.shape[-1]
    scale = np.trace(gram, axis1=-2, axis2=-1) / size
    regularised = gram + (ridge * scale + _FLOOR)[:, None, None] * np.eye(size)
    # Solve for X^T y and for the all-ones vector together: a = u + v (1 - 1.u) / (1.v)
    both = np.linalg.solve(regularised, np.stack([cross, np.ones_like(cross)], axis=-1))
    u, v = both[..., 0], both[..., 1]
    return u + v * ((1 - u.sum(-1)) / v.sum(-1))[:, None]
