"""Where in the image: self-descriptions of a grid of tiles, for a per-tile score map."""

from __future__ import annotations

import math

import numpy as np

from .config import ForensicConfig
from .describe import describe_plane


def tile_grid(height: int, width: int, tile: int, max_tiles: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Tops and lefts of the tiles (evenly spread, covering the image; at most `max_tiles` a side, so a
    large image gets spaced-out tiles rather than thousands) and the tile's side."""
    side = min(tile, height, width)
    rows = min(math.ceil(height / side), max_tiles)
    cols = min(math.ceil(width / side), max_tiles)
    tops = np.linspace(0, height - side, rows).round().astype(int)
    lefts = np.linspace(0, width - side, cols).round().astype(int)
    return tops, lefts, side


def tile_boxes(height: int, width: int, config: ForensicConfig) -> np.ndarray:
    """rows x cols x 4 boxes (x0, y0, x1, y1) in pixels: where each cell of `score_map` looked."""
    tops, lefts, side = tile_grid(height, width, config.tile, config.max_tiles)
    boxes = np.empty((len(tops), len(lefts), 4), int)
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            boxes[i, j] = (left, top, left + side, top + side)
    return boxes


def describe_tile(grey: np.ndarray, bank: np.ndarray, config: ForensicConfig) -> np.ndarray:
    return describe_plane(grey, bank, config.neighbourhood, config.scales, config.tile_samples, config.ridge,
                          config.seed)


def describe_tiles(grey: np.ndarray, bank: np.ndarray, config: ForensicConfig) -> np.ndarray:
    """rows x cols x D self-descriptions of the tiles of a grey plane."""
    tops, lefts, side = tile_grid(*grey.shape, config.tile, config.max_tiles)
    return np.stack([np.stack([describe_tile(grey[t:t + side, l:l + side], bank, config) for l in lefts])
                     for t in tops])


def random_tiles(grey: np.ndarray, count: int, config: ForensicConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` tiles of the score map's size at random places (for fitting the tile model)."""
    side = min(config.tile, *grey.shape)
    return [grey[t:t + side, l:l + side] for t, l in
            zip(rng.integers(0, grey.shape[0] - side + 1, count), rng.integers(0, grey.shape[1] - side + 1, count))]
