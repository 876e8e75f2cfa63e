"""An image's forensic self-description: how each of its residuals is predicted from its own neighbours.

For every residual map and every scale (the map average-pooled by 1, 2, 4), the sum-to-one linear
predictor of a residual pixel from its n x n neighbourhood, solved by ridge least squares over sampled
positions. The weights are point-symmetric (a neighbour and its mirror share one weight: for a stationary
signal the best predictor is), so each predictor has (n^2 - 1) / 2 numbers; their concatenation over
filters and scales is the description. It sums up the residuals' correlations, which generators and
upsamplers leave unlike a camera's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from .filters import residuals
from .lstsq import sum_to_one_solve


def pooled(maps: np.ndarray, factor: int) -> np.ndarray:
    """K x H x W maps averaged over factor x factor blocks (a partial last block is dropped; a map
    smaller than one block becomes its mean)."""
    if factor == 1:
        return maps
    if min(maps.shape[-2:]) < factor:
        return maps.mean(axis=(-2, -1), keepdims=True)
    return F.avg_pool2d(torch.from_numpy(maps)[None], factor)[0].numpy()


def neighbourhoods(maps: np.ndarray, size: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """K x N x size^2 windows of the maps around N sampled positions (all positions when there are at
    most `samples`); the maps are mirrored at their borders."""
    pad = size // 2
    height, width = maps.shape[-2:]
    mode = "reflect" if min(height, width) > 1 else "edge"
    padded = np.pad(maps, ((0, 0), (pad, pad), (pad, pad)), mode=mode)
    windows = sliding_window_view(padded, (size, size), axis=(1, 2))  # K x H x W x size x size, a view
    if height * width <= samples:
        picked = windows.reshape(maps.shape[0], height * width, size, size)
    else:
        index = rng.integers(0, height * width, samples)
        picked = windows[:, index // width, index % width]
    return picked.reshape(maps.shape[0], -1, size * size)


def symmetric_predictors(windows: np.ndarray, ridge: float) -> np.ndarray:
    """K x M weights (M = (size^2 - 1) / 2) of the sum-to-one predictor of each window's centre from the
    averages of its mirrored neighbour pairs."""
    area = windows.shape[-1]
    half = area // 2
    features = (windows[..., :half] + windows[..., :half:-1]) * 0.5  # pair i with its mirror area-1-i
    target = windows[..., half]
    gram = np.matmul(features.transpose(0, 2, 1), features).astype(np.float64)
    cross = np.einsum("knm,kn->km", features, target).astype(np.float64)
    return sum_to_one_solve(gram, cross, ridge)


def describe_plane(grey: np.ndarray, bank: np.ndarray, neighbourhood: int, scales: tuple[int, ...],
                   samples: int, ridge: float, seed: int) -> np.ndarray:
    """The self-description (float32, filters x scales x M) of one grey plane, cropped already. The
    sampled positions depend only on the seed and the plane's size: the same image always gives the
    same description."""
    maps = residuals(grey, bank)
    parts = []
    done = {1: maps}  # pooling by 4 is pooling by 2 twice: reuse the coarser maps already made
    for factor in scales:
        base = max((f for f in done if factor % f == 0), default=1)
        scaled = done[factor] = np.ascontiguousarray(pooled(done[base], factor // base))
        rng = np.random.default_rng([seed, factor, *scaled.shape[-2:]])
        parts.append(symmetric_predictors(neighbourhoods(scaled, neighbourhood, samples, rng), ridge))
    return np.concatenate([p.ravel() for p in parts]).astype(np.float32)
