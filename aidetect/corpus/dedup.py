"""Exact and near duplicates of images: a hash of the pixels, and a perceptual fingerprint.

The fingerprint is the image shrunk to 32x32 RGB by area averaging. Its luminance gives the 64-bit
DCT perceptual hash (pHash: the 2-D DCT's 8x8 lowest frequencies, one bit each, set when above their
median); the thumbnail itself gives the colours. Two images are near duplicates when their pHashes
differ in at most NEAR_DISTANCE bits AND their thumbnails differ by at most NEAR_DIFFERENCE (mean
absolute difference, 0-255). pHash alone is too coarse for generated images: a generator run with a
fixed seed draws the same layout for different prompts, and those pictures share a pHash within 4-6
bits while looking nothing alike. Mirrored or cropped copies are not caught. Pillow and numpy only:
OpenCV's thread pool can hang in processes forked after the parent used it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from PIL import Image

# Chosen by looking at every pair the corpus build flagged; the README ("Training corpus") gives the
# distances that copies and look-alike pictures showed.
NEAR_DISTANCE = 6
NEAR_DIFFERENCE = 10.0
THUMBNAIL = 32

Label = TypeVar("Label")


def pixel_sha256(pixels: np.ndarray) -> str:
    """Identical decoded pixels give the same hash, whatever file format holds them."""
    return hashlib.sha256(f"{pixels.shape}".encode() + np.ascontiguousarray(pixels).tobytes()).hexdigest()


def _dct_matrix(size: int = THUMBNAIL) -> np.ndarray:
    """The orthonormal DCT-II basis: D @ X @ D.T is the 2-D DCT of X."""
    k, n = np.mgrid[0:size, 0:size]
    basis = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2 / size)
    basis[0] /= np.sqrt(2)
    return basis


_DCT = _dct_matrix()


@dataclass(frozen=True)
class Fingerprint:
    phash: int  # 64 bits
    thumbnail: np.ndarray = field(repr=False)  # THUMBNAIL x THUMBNAIL x 3 uint8


def fingerprint(pixels: np.ndarray) -> Fingerprint:
    """The perceptual fingerprint of an H x W x 3 uint8 RGB array."""
    small = Image.fromarray(np.ascontiguousarray(pixels)).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    thumbnail = np.asarray(small, dtype=np.uint8)
    luma = thumbnail.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    low = (_DCT @ luma @ _DCT.T)[:8, :8].flatten()
    bits = low > np.median(low)
    return Fingerprint(int.from_bytes(np.packbits(bits).tobytes(), "big"), thumbnail)


def phash(pixels: np.ndarray) -> int:
    return fingerprint(pixels).phash


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


@dataclass(frozen=True)
class Match(Generic[Label]):
    label: Label
    distance: int  # pHash bits
    difference: float  # thumbnail mean absolute difference


class NearIndex(Generic[Label]):
    """Fingerprints with a label each. `find` returns the closest near duplicate already added (by
    pHash distance, then the earliest added), so a duplicate is said to be of the first copy."""

    def __init__(self, max_distance: int = NEAR_DISTANCE, max_difference: float = NEAR_DIFFERENCE) -> None:
        self.max_distance, self.max_difference = max_distance, max_difference
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._thumbnails: list[np.ndarray] = []
        self._labels: list[Label] = []

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, fp: Fingerprint, label: Label) -> None:
        if len(self._labels) == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[len(self._labels)] = np.uint64(fp.phash)
        self._thumbnails.append(fp.thumbnail)
        self._labels.append(label)

    def find(self, fp: Fingerprint) -> Match[Label] | None:
        if not self._labels:
            return None
        distances = _popcount(self._hashes[:len(self._labels)] ^ np.uint64(fp.phash))
        close = np.nonzero(distances <= self.max_distance)[0]
        for index in sorted(close.tolist(), key=lambda i: (distances[i], i)):
            difference = float(np.abs(self._thumbnails[index].astype(np.int16) - fp.thumbnail).mean())
            if difference <= self.max_difference:
                return Match(self._labels[index], int(distances[index]), round(difference, 2))
        return None
