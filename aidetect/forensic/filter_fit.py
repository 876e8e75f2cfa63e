"""Learning a bank of prediction-error filters on real photos, two ways.

`learn_filters`: K constrained filters learnt jointly (Adam) to minimise the log residual energy of real
crops, plus a term that keeps their residuals decorrelated (else they would all fall onto the same
optimal predictor). `least_squares_bank`: the baseline, K sum-to-one least-squares predictors, each on
its own support (full ring, 3 x 3 ring, causal and anti-causal half-planes, row, column, diagonals).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .filters import constrain
from .lstsq import sum_to_one_solve

CROP = 64
SUPPORTS = ("ring", "ring3", "causal", "anticausal", "row", "column", "diagonal", "antidiagonal")


def sample_crops(greys: Sequence[np.ndarray], count: int, seed: int, size: int = CROP) -> np.ndarray:
    """`count` random size x size crops, spread evenly over the grey planes (those smaller are skipped)."""
    usable = [g for g in greys if min(g.shape) >= size]
    if not usable:
        raise ValueError(f"no fitting image is at least {size} pixels a side: cannot learn filters")
    rng = np.random.default_rng(seed)
    crops = np.empty((count, size, size), np.float32)
    for i in range(count):
        grey = usable[i % len(usable)]
        top = rng.integers(0, grey.shape[0] - size + 1)
        left = rng.integers(0, grey.shape[1] - size + 1)
        crops[i] = grey[top:top + size, left:left + size]
    return crops


def support_mask(name: str, size: int) -> np.ndarray:
    """Boolean size x size mask of the neighbours a baseline predictor may use (never the centre)."""
    c = size // 2
    dy, dx = np.mgrid[-c:c + 1, -c:c + 1]
    masks = {
        "ring": np.ones((size, size), bool),
        "ring3": (np.abs(dy) <= 1) & (np.abs(dx) <= 1),
        "causal": (dy < 0) | ((dy == 0) & (dx < 0)),
        "anticausal": (dy > 0) | ((dy == 0) & (dx > 0)),
        "row": dy == 0,
        "column": dx == 0,
        "diagonal": dy == dx,
        "antidiagonal": dy == -dx,
    }
    if name not in masks:
        raise ValueError(f"unknown support {name!r}; choose one of {', '.join(SUPPORTS)}")
    mask = masks[name].copy()
    mask[c, c] = False
    return mask


def least_squares_bank(crops: np.ndarray, filters: int, size: int, ridge: float = 1e-6,
                       chunk: int = 64) -> np.ndarray:
    """The baseline bank: filter k is the sum-to-one least-squares predictor on support SUPPORTS[k % 8],
    fitted over every interior position of the crops."""
    names = [SUPPORTS[k % len(SUPPORTS)] for k in range(filters)]
    area = size * size
    gram = np.zeros((area, area))
    cross = np.zeros(area)
    centre = area // 2
    for start in range(0, len(crops), chunk):
        batch = torch.from_numpy(crops[start:start + chunk])[:, None].double()
        windows = F.unfold(batch, size).transpose(1, 2).reshape(-1, area).numpy()  # positions x area
        gram += windows.T @ windows
        cross += windows.T @ windows[:, centre]
    bank = np.zeros((filters, size, size), np.float32)
    for k, name in enumerate(names):
        keep = np.flatnonzero(support_mask(name, size).ravel())
        weights = sum_to_one_solve(gram[np.ix_(keep, keep)][None], cross[keep][None], ridge)[0]
        bank[k].ravel()[keep] = weights
    return bank


def learn_filters(crops: np.ndarray, filters: int, size: int, diversity: float, steps: int, seed: int,
                  batch: int = 64, lr: float = 0.01, progress: Callable[[int, float], None] | None = None) -> np.ndarray:
    """K filters minimising mean log residual energy over real crops + `diversity` x the mean squared
    correlation between different filters' residuals (per crop). Deterministic for a seed on one thread."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(filters, size, size, generator=generator, dtype=torch.float32) / size
    weights.requires_grad_(True)
    optimiser = torch.optim.Adam([weights], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    data = torch.from_numpy(np.ascontiguousarray(crops, np.float32))[:, None]
    off_diagonal = ~torch.eye(filters, dtype=torch.bool)
    for step in range(steps):
        pick = torch.randint(len(data), (min(batch, len(data)),), generator=generator)
        x = data[pick]
        bank = constrain(weights)
        pad = size // 2
        r = x[:, :, pad:-pad, pad:-pad] - F.conv2d(x, bank[:, None])  # valid positions only: N x K x h x w
        r = r.flatten(2)
        energy = r.pow(2).mean(-1)  # N x K
        loss = torch.log(energy + 0.1).mean()
        if filters > 1 and diversity > 0:
            centred = r - r.mean(-1, keepdim=True)
            norm = centred / (centred.norm(dim=-1, keepdim=True) + 1e-6)
            corr = norm @ norm.transpose(1, 2)  # N x K x K
            loss = loss + diversity * corr[:, off_diagonal].pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress(step, float(loss.detach()))
    with torch.no_grad():
        return constrain(weights).numpy().astype(np.float32)
