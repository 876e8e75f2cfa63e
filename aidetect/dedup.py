"""Exact and near duplicates of images: a pixel hash and a 64-bit perceptual hash (DCT pHash).

pHash: the luminance is shrunk to 32x32 (area averaging), its 2-D DCT taken, and each of the 8x8
lowest frequencies compared with their median, one bit each. Pillow and numpy only: OpenCV's thread
pool can hang in processes forked after the parent used it. Re-encoding, resizing and mild
colour changes move few bits; different pictures differ by about 32 of 64. Mirrored or cropped
copies are not caught.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from PIL import Image

# Hamming distances measured on the corpus (see README, "Training corpus"): re-encodings and resized
# copies fall at 0-4; at 6-10 the merges were the same scene shot twice or a GAN's
# low-truncation samples of one face; above that, different pictures that share a layout.
NEAR_DISTANCE = 6

Label = TypeVar("Label")


def pixel_sha256(pixels: np.ndarray) -> str:
    """Identical decoded pixels give the same hash, whatever file format holds them."""
    return hashlib.sha256(f"{pixels.shape}".encode() + np.ascontiguousarray(pixels).tobytes()).hexdigest()


def _dct_matrix(size: int = 32) -> np.ndarray:
    """The orthonormal DCT-II basis: D @ X @ D.T is the 2-D DCT of X."""
    k, n = np.mgrid[0:size, 0:size]
    basis = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2 / size)
    basis[0] /= np.sqrt(2)
    return basis


_DCT = _dct_matrix()


def phash(pixels: np.ndarray) -> int:
    """The 64-bit DCT perceptual hash of an H x W x 3 uint8 RGB array."""
    gray = Image.fromarray(np.ascontiguousarray(pixels)).convert("L").resize((32, 32), Image.Resampling.BOX)
    low = (_DCT @ np.asarray(gray, dtype=np.float64) @ _DCT.T)[:8, :8].flatten()
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


@dataclass(frozen=True)
class Match(Generic[Label]):
    label: Label
    distance: int


class NearIndex(Generic[Label]):
    """Perceptual hashes with a label each; `nearest` finds the closest one already added (the first
    added wins a tie, so the earliest copy is the one a duplicate is said to be of)."""

    def __init__(self) -> None:
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._labels: list[Label] = []

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, value: int, label: Label) -> None:
        if len(self._labels) == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[len(self._labels)] = np.uint64(value)
        self._labels.append(label)

    def nearest(self, value: int) -> Match[Label] | None:
        if not self._labels:
            return None
        distances = _popcount(self._hashes[:len(self._labels)] ^ np.uint64(value))
        best = int(np.argmin(distances))
        return Match(self._labels[best], int(distances[best]))
