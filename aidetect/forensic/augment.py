"""What a real photo meets on its way to a user, applied to the fitting photos: downscaling and JPEG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

_FILTERS = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR, Image.Resampling.BOX)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """The pixels after a round trip through Pillow's JPEG at `quality` (4:2:0 below 90, 4:4:4 above)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=int(quality), subsampling=0 if quality >= 90 else 2)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def downscale(pixels: np.ndarray, factor: float, resample: Image.Resampling = Image.Resampling.LANCZOS,
              min_side: int = 16) -> np.ndarray:
    """The pixels resized by `factor` (< 1) with antialiasing, never below `min_side` a side."""
    height, width = pixels.shape[:2]
    factor = max(factor, min_side / max(min(height, width), 1))
    if factor >= 1:
        return pixels
    size = (max(min_side, round(width * factor)), max(min_side, round(height * factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, resample))


def augmented_view(pixels: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (60, 100),
                   scale: tuple[float, float] = (0.5, 1.0), min_side: int = 16) -> np.ndarray:
    """One random view: downscaled (half the time, by a factor in `scale`, a random resampling filter),
    then JPEG-compressed (three times in four, and always when not downscaled) at a quality in `quality`."""
    view = pixels
    resized = rng.random() < 0.5
    if resized:
        view = downscale(view, rng.uniform(*scale), _FILTERS[rng.integers(len(_FILTERS))], min_side)
    if not resized or rng.random() < 0.75:
        view = jpeg(view, rng.integers(quality[0], quality[1] + 1))
    return view
