"""The density of real photos' self-descriptions: standardise, PCA (whitened), a Gaussian mixture.

Score = negative log-likelihood, higher = less like any real photo seen in fitting. With `residual`
set, what PCA discards counts too (an isotropic Gaussian over the discarded directions, as in
probabilistic PCA), so a description far outside the real photos' subspace cannot hide there.
Fitted with scikit-learn; kept and scored as plain arrays so that it lives in a torch checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))
REG_COVAR = 1e-2  # added to the mixture's covariances, in whitened units


@dataclass
class RealMixture:
    mean: np.ndarray  # D, of the descriptions
    std: np.ndarray  # D
    basis: np.ndarray  # D x d, orthonormal principal directions of the standardised descriptions
    scale: np.ndarray  # d, their standard deviations (whitening)
    residual_var: float  # mean variance of the discarded directions (0: the residual is not scored)
    weights: np.ndarray  # C
    means: np.ndarray  # C x d
    precision_chol: np.ndarray  # C x d x d (scikit-learn's convention: y = (x - mu) @ P)

    @property
    def dims(self) -> int:
        return self.basis.shape[1]

    def project(self, descriptions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whitened PCA coordinates N x d and the squared norm N of what PCA discards."""
        z = (np.asarray(descriptions, np.float64) - self.mean) / self.std
        coords = z @ self.basis
        rest = np.maximum((z * z).sum(-1) - (coords * coords).sum(-1), 0.0)
        return coords / self.scale, rest

    def score(self, descriptions: np.ndarray) -> np.ndarray:
        """Negative log-likelihood (nats) of each row of N x D descriptions."""
        coords, rest = self.project(np.atleast_2d(descriptions))
        d = coords.shape[1]
        log_det = np.log(np.diagonal(self.precision_chol, axis1=1, axis2=2)).sum(-1)  # C
        y = np.einsum("nd,cde->nce", coords, self.precision_chol) \
            - np.einsum("cd,cde->ce", self.means, self.precision_chol)[None]
        log_prob = -0.5 * (d * _LOG_2PI + (y * y).sum(-1)) + log_det + np.log(self.weights)  # N x C
        top = log_prob.max(1, keepdims=True)
        nll = -(top[:, 0] + np.log(np.exp(log_prob - top).sum(1)))
        nll += np.log(self.scale).sum()  # the whitening's Jacobian: a density over standardised descriptions
        if self.residual_var > 0:
            discarded = self.basis.shape[0] - d
            nll += 0.5 * (rest / self.residual_var + discarded * (_LOG_2PI + np.log(self.residual_var)))
        return nll

    def to_arrays(self) -> dict[str, np.ndarray | float]:
        return {"mean": self.mean, "std": self.std, "basis": self.basis, "scale": self.scale,
                "residual_var": float(self.residual_var), "weights": self.weights, "means": self.means,
                "precision_chol": self.precision_chol}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "RealMixture":
        return cls(**arrays)

    def __post_init__(self) -> None:  # one dtype and layout, so that a restored model scores bit for bit alike
        for name in ("mean", "std", "basis", "scale", "weights", "means", "precision_chol"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name), np.float64))
        self.residual_var = float(self.residual_var)


@dataclass
class PooledDensity:
    """A weighted mixture of densities, p(x) = sum_i w_i p_i(x): a model of real photos with a user's own
    cameras added as a part of their own (RealPhotoModel.refit). Each part keeps its own PCA, so adding
    photos never degrades what the first part knew: its score rises by at most -log(w_0) nats."""

    parts: list[RealMixture]
    weights: np.ndarray  # one per part, summing to 1

    @classmethod
    def adding(cls, density: "Density", part: RealMixture, weight: float) -> "PooledDensity":
        """`density` (kept whole, its parts rescaled by 1 - weight) and a new `part` of weight `weight`."""
        old = density if isinstance(density, PooledDensity) else cls([density], np.ones(1))
        return cls([*old.parts, part], np.append(old.weights * (1 - weight), weight))

    def score(self, descriptions: np.ndarray) -> np.ndarray:
        nll = np.stack([part.score(descriptions) for part in self.parts])  # P x N
        log_joint = np.log(self.weights)[:, None] - nll
        top = log_joint.max(0)
        return -(top + np.log(np.exp(log_joint - top).sum(0)))

    def to_arrays(self) -> dict[str, np.ndarray | float]:
        arrays: dict[str, np.ndarray | float] = {"part_weights": np.asarray(self.weights, np.float64)}
        for i, part in enumerate(self.parts):
            arrays.update({f"part{i}.{key}": value for key, value in part.to_arrays().items()})
        return arrays

    def __post_init__(self) -> None:
        self.weights = np.ascontiguousarray(self.weights, np.float64)
        if len(self.weights) != len(self.parts) or not np.isclose(self.weights.sum(), 1) or np.any(self.weights <= 0):
            raise ValueError("a pooled density needs one positive weight per part, summing to 1")


Density = Union[RealMixture, PooledDensity]


def density_from_arrays(arrays: dict) -> Density:
    """A RealMixture, or a PooledDensity when the arrays hold parts (to_arrays of either)."""
    if "part_weights" not in arrays:
        return RealMixture.from_arrays(arrays)
    weights = np.asarray(arrays["part_weights"])
    parts = [RealMixture.from_arrays({key.split(".", 1)[1]: value for key, value in arrays.items()
                                      if key.startswith(f"part{i}.")}) for i in range(len(weights))]
    return PooledDensity(parts, weights)


def fit_mixture(descriptions: np.ndarray, components: int, dims: int, covariance: str, seed: int,
                residual: bool = True) -> RealMixture:
    """Fit on N x D descriptions of real photos. The PCA keeps at most `dims` directions and at most a
    quarter of N; the mixture has at most one component per 10 descriptions."""
    x = np.asarray(descriptions, np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"need at least 4 descriptions to fit the real-photo model, got {len(x)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("a description holds NaN or infinity")
    from sklearn.mixture import GaussianMixture

    mean = x.mean(0)
    std = x.std(0)
    std = np.where(std > 1e-8 * max(float(std.max()), 1e-30), std, 1.0)
    z = (x - mean) / std
    _, singular, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    variances = singular ** 2 / max(len(z) - 1, 1)
    d = int(max(1, min(dims, len(z) // 4, int((variances > 1e-10 * variances[0]).sum()))))
    basis = vt[:d].T
    scale = np.sqrt(np.maximum(variances[:d], 1e-12))
    discarded = variances[d:].sum() / max(z.shape[1] - d, 1)
    residual_var = float(max(discarded, 1e-6)) if residual and z.shape[1] > d else 0.0
    coords = (z @ basis) / scale
    gmm = GaussianMixture(n_components=int(max(1, min(components, len(z) // 10))), covariance_type=covariance,
                          reg_covar=REG_COVAR, random_state=seed, n_init=2, max_iter=300).fit(coords)
    c = gmm.n_components
    prec = gmm.precisions_cholesky_
    if covariance == "diag":
        prec = np.stack([np.diag(p) for p in prec])
    elif covariance == "tied":
        prec = np.broadcast_to(prec, (c, d, d)).copy()
    return RealMixture(mean=mean, std=std, basis=basis, scale=scale, residual_var=residual_var,
                       weights=gmm.weights_.copy(), means=gmm.means_.copy(), precision_chol=np.asarray(prec))
