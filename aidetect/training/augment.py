"""Training-time image perturbations: the paper's blur/JPEG/flip recipe plus format alignment.

All functions take and return H x W x 3 uint8 RGB arrays and draw from an explicit numpy
Generator, so that a sample's augmentation depends only on (seed, epoch, index): runs repeat
exactly, whatever the number of workers, and resume mid-training.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import AugmentConfig
from ..evaluation.perturb import gaussian_blur, jpeg_roundtrip
from ..transforms import INPUT_SIZE


def random_crop(image: np.ndarray, rng: np.random.Generator, sides: tuple[int, int] | None) -> np.ndarray:
    """A square crop at native resolution (no resizing: generation traces live in the pixels); `sides`
    None: the whole shorter side."""
    height, width = image.shape[:2]
    side = min(height, width) if sides is None else min(int(rng.integers(sides[0], sides[1] + 1)), height, width)
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return image[top:top + side, left:left + side]


def downscale(image: np.ndarray, factor: float, min_side: int) -> np.ndarray:
    """Area-averaged downscale by `factor`, never below `min_side` pixels on the shorter side."""
    height, width = image.shape[:2]
    factor = min(1.0, max(factor, min_side / min(height, width)))
    if factor >= 1.0:
        return image
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass
class Augmented:
    """An augmented image and the compression it last went through (what a format-bias check needs)."""

    pixels: np.ndarray
    jpeg_quality: int | None  # quality of the last JPEG round trip applied; None: the source's own format


def augmented(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> Augmented:
    """Rescale, crop, align formats, then the paper's blur, JPEG and flip."""
    quality = None
    if rng.random() < config.rescale_prob:
        image = downscale(image, float(rng.uniform(*config.rescale)), INPUT_SIZE if config.crop is None else config.crop[0])
    image = random_crop(image, rng, config.crop)
    if rng.random() < config.reencode_prob:
        quality = int(rng.integers(config.reencode_quality[0], config.reencode_quality[1] + 1))
        image = jpeg_roundtrip(image, quality)
    if rng.random() < config.blur_prob:
        image = gaussian_blur(image, float(rng.uniform(*config.blur_sigma)))
    if rng.random() < config.jpeg_prob:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        image = jpeg_roundtrip(image, quality, use_cv2=bool(rng.random() < 0.5))
    if config.flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return Augmented(np.ascontiguousarray(image), quality)


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """The augmented pixels alone (see `augmented`)."""
    return augmented(image, rng, config).pixels
