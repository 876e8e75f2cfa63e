"""Pixels in, the grey plane the forensic branch works on out: validation, luma, centre crop."""

from __future__ import annotations

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as JPEG's Y


def to_grey(pixels: np.ndarray, min_side: int = 16, crop: int | None = None) -> np.ndarray:
    """An H x W (grey) or H x W x 1/3/4 (RGB(A), alpha ignored) uint8 array as float32 luma in 0..255,
    only its centre `crop` x `crop` window when `crop` is given (cut before converting: a large image
    costs no more than a small one). Raises ValueError, with the reason, on anything else or on an
    image smaller than `min_side`."""
    if not isinstance(pixels, np.ndarray):
        raise ValueError(f"expected a numpy array of pixels, got {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim in (2, 3) and min(pixels.shape[:2]) < min_side:
        raise ValueError(f"image too small for the forensic branch: {pixels.shape[1]}x{pixels.shape[0]} "
                         f"(needs at least {min_side} pixels a side)")
    if crop is not None and pixels.ndim in (2, 3):
        top, left, h, w = centre_window(*pixels.shape[:2], crop)
        pixels = pixels[top:top + h, left:left + w]
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        grey = pixels[..., :3].astype(np.float32) @ _LUMA
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        grey = pixels[..., 0].astype(np.float32)
    elif pixels.ndim == 2:
        grey = pixels.astype(np.float32)
    else:
        raise ValueError(f"expected H x W or H x W x 3 pixels, got shape {pixels.shape}")
    return grey


def centre_window(height: int, width: int, side: int) -> tuple[int, int, int, int]:
    """Top, left, height and width of the centre `side` x `side` window (each dimension clipped)."""
    h, w = min(height, side), min(width, side)
    return (height - h) // 2, (width - w) // 2, h, w


def centre_crop(plane: np.ndarray, side: int) -> np.ndarray:
    """The centre `side` x `side` window of the last two dimensions."""
    top, left, h, w = centre_window(*plane.shape[-2:], side)
    return plane[..., top:top + h, left:left + w]
