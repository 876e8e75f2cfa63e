"""Constrained prediction-error filters: a pixel predicted from its neighbours, residual = pixel - prediction.

A bank is a float32 array K x F x F whose centre weights are 0 and whose other weights sum to one, so a
filter reproduces a flat image exactly and its residual carries only what the neighbours cannot explain.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def constrain(weights: torch.Tensor) -> torch.Tensor:
    """Any K x F x F tensor moved onto the constraint set (differentiably): centre 0, the rest summing to 1,
    by spreading the missing sum evenly over the off-centre weights."""
    size = weights.shape[-1]
    mask = torch.ones(size, size, dtype=weights.dtype, device=weights.device)
    mask[size // 2, size // 2] = 0
    masked = weights * mask
    missing = 1 - masked.sum(dim=(-2, -1), keepdim=True)
    return masked + mask * missing / (size * size - 1)


def check_bank(bank: np.ndarray) -> np.ndarray:
    """The bank as float32 K x F x F, or ValueError when it breaks the constraints."""
    bank = np.asarray(bank, dtype=np.float32)
    if bank.ndim != 3 or bank.shape[1] != bank.shape[2] or bank.shape[1] % 2 == 0:
        raise ValueError(f"a filter bank is K x F x F with F odd, not {bank.shape}")
    centre = bank.shape[1] // 2
    if not np.all(np.isfinite(bank)) or np.abs(bank[:, centre, centre]).max() > 1e-6 \
            or np.abs(bank.sum(axis=(1, 2)) - 1).max() > 1e-4:
        raise ValueError("a prediction-error filter needs a zero centre and weights summing to one")
    return bank


def residual_maps(grey: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Residuals of N x 1 x H x W grey planes under a K x F x F bank: N x K x H x W, same size (the planes
    are mirrored at their borders; a plane thinner than the filter is padded by repeating its edge)."""
    pad = bank.shape[-1] // 2
    mode = "reflect" if min(grey.shape[-2:]) > pad else "replicate"
    prediction = F.conv2d(F.pad(grey, (pad, pad, pad, pad), mode=mode), bank[:, None])
    return grey - prediction


def residuals(grey: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Residuals of one H x W float32 grey plane: K x H x W float32."""
    with torch.no_grad():
        maps = residual_maps(torch.from_numpy(np.ascontiguousarray(grey, np.float32))[None, None],
                             torch.from_numpy(bank))
    return maps[0].numpy()
