"""Training-time image perturbations: the paper's blur/JPEG/flip recipe plus format alignment.

All functions take and return H x W x 3 uint8 RGB arrays and draw from an explicit numpy
Generator, so that a sample's augmentation depends only on (seed, epoch, index): runs repeat
exactly, whatever the number of workers, and resume mid-training.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    blur_prob: float = 0.1  # paper: p = 0.1, sigma ~ U[0, 3]
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.1  # paper: p = 0.1, quality ~ U{30..100}, OpenCV or Pillow at random
    jpeg_quality: tuple[int, int] = (30, 100)
    flip: bool = True
    # Format alignment (not in the paper): re-encode every image of both classes as JPEG with this
    # probability, so that "has a JPEG history of kind X" cannot separate the classes.
    reencode_prob: float = 0.0
    reencode_quality: tuple[int, int] = (70, 100)
    crop: tuple[int, int] = (224, 368)  # side range of the random native-resolution square crop
    # Resampling robustness (not in the paper): downscale both classes alike with this probability,
    # by a factor in `rescale`, so that "was resized" (common for real photos online) is no class cue.
    rescale_prob: float = 0.0
    rescale: tuple[float, float] = (0.5, 1.0)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def jpeg(image: np.ndarray, quality: int, use_cv2: bool = False) -> np.ndarray:
    """Re-encode as JPEG at `quality` with OpenCV or Pillow (their encoders differ slightly)."""
    if use_cv2:
        ok, buffer = cv2.imencode(".jpg", image[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise RuntimeError("OpenCV failed to encode JPEG")
        return np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:, :, ::-1])
    stream = io.BytesIO()
    Image.fromarray(image).save(stream, format="JPEG", quality=int(quality))
    stream.seek(0)
    return np.array(Image.open(stream).convert("RGB"))


def random_crop(image: np.ndarray, rng: np.random.Generator, sides: tuple[int, int]) -> np.ndarray:
    """A square crop at native resolution (no resizing: generation traces live in the pixels)."""
    height, width = image.shape[:2]
    side = min(int(rng.integers(sides[0], sides[1] + 1)), height, width)
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


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Rescale, crop, align formats, then the paper's blur, JPEG and flip."""
    if rng.random() < config.rescale_prob:
        image = downscale(image, float(rng.uniform(*config.rescale)), config.crop[0])
    image = random_crop(image, rng, config.crop)
    if rng.random() < config.reencode_prob:
        image = jpeg(image, int(rng.integers(config.reencode_quality[0], config.reencode_quality[1] + 1)))
    if rng.random() < config.blur_prob:
        image = gaussian_blur(image, float(rng.uniform(*config.blur_sigma)))
    if rng.random() < config.jpeg_prob:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        image = jpeg(image, quality, use_cv2=bool(rng.random() < 0.5))
    if config.flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)
