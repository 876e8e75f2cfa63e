"""Gaussian blur and JPEG round trips: the field's robustness perturbations, and the primitives of
training augmentation (augment.py), one implementation of each.

`Perturbation` applies both classes alike at evaluation: blur first, then JPEG, as in CNNDetection's
augmentation. JPEG at quality 100 still re-encodes (that is the point of the q100 row: chroma
subsampling and rounding).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

JPEG_SWEEP = (100, 90, 75, 50, 30)
BLUR_SWEEP = (0.0, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class Perturbation:
    """Resizing by `scale` (1: none; area averaging down, bicubic up), Gaussian blur of `blur_sigma` pixels
    (0: none), then JPEG at `jpeg_quality` (None: none)."""

    jpeg_quality: int | None = None
    blur_sigma: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must lie between 1 and 100, got {self.jpeg_quality}")
        if self.blur_sigma < 0:
            raise ValueError(f"blur sigma must be 0 or more, got {self.blur_sigma}")
        if not 0 < self.scale <= 8:
            raise ValueError(f"resize factor must lie in (0, 8], got {self.scale}")

    @property
    def label(self) -> str:
        parts = ([f"resize {self.scale:g}"] if self.scale != 1 else []) + \
                ([f"blur {self.blur_sigma:g}"] if self.blur_sigma else []) + \
                ([f"jpeg {self.jpeg_quality}"] if self.jpeg_quality is not None else [])
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict:
        return {"jpeg_quality": self.jpeg_quality, "blur_sigma": self.blur_sigma, "scale": self.scale}

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Perturb an H x W x 3 uint8 RGB array; returns a new array (or the same one if nothing to do).
        Raises ValueError for an image the perturbation cannot handle (JPEG stops at 65500 pixels a side)."""
        try:
            if self.scale != 1:
                pixels = resize(pixels, self.scale)
            if self.blur_sigma:
                pixels = gaussian_blur(pixels, self.blur_sigma)
            if self.jpeg_quality is not None:
                pixels = jpeg_roundtrip(pixels, self.jpeg_quality)
        except (OSError, cv2.error) as exc:
            raise ValueError(f"{self.label} failed: {str(exc).strip().splitlines()[-1][:200]}") from None
        return pixels


def resize(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Resize by `scale` (at least 1 pixel a side): area averaging when shrinking, bicubic when enlarging."""
    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` (kernel size chosen by OpenCV from sigma; 0: none)."""
    if sigma <= 0:
        return pixels
    return cv2.GaussianBlur(pixels, (0, 0), sigmaX=sigma, sigmaY=sigma)


def jpeg_roundtrip(pixels: np.ndarray, quality: int, use_cv2: bool = False) -> np.ndarray:
    """Encode as JPEG at `quality` with Pillow, or OpenCV (their encoders differ slightly), and decode again."""
    if use_cv2:
        ok, buffer = cv2.imencode(".jpg", pixels[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise OSError("OpenCV failed to encode JPEG")
        return np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:, :, ::-1])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()
