"""Does training's alignment hide the format and size bias? The data card's check, on the views training sees.

The corpus card measures how well format and size alone separate real from generated files. Training
does not see files: it sees views re-encoded, rescaled and cropped alike for both classes
(augment.py). This draws the view of each image exactly as the descriptor cache does (view 0, from
the same seed and path), and describes it as the card describes a file: its format (JPEG if it went
through a JPEG round trip, else its file's), JPEG quality, width, height and bits per pixel (of the
view encoded as it was last encoded: its JPEG, or its file's compression). The check itself is the
card's (`corpus_card.format_size_auc`).
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..config import AugmentConfig
from ..images import ImageError, load_image
from ..training.augment import augmented
from ..training.descriptor_cache import view_rng
from .card import ImageRecord


def view_record(record: ImageRecord, path: str, config: AugmentConfig, seed: int = 0) -> ImageRecord:
    """The record of view 0 of the image at `path` (drawn as features.extract draws it)."""
    view = augmented(load_image(path), view_rng(seed, 0, path), config)
    height, width = view.pixels.shape[:2]
    if view.jpeg_quality is None:
        return dataclasses.replace(record, width=width, height=height)
    buffer = io.BytesIO()
    Image.fromarray(view.pixels).save(buffer, format="JPEG", quality=view.jpeg_quality)
    return dataclasses.replace(record, format="jpeg", jpeg_quality=view.jpeg_quality, width=width, height=height,
                               bits_per_pixel=8 * buffer.tell() / (width * height))


def aligned_records(root: str | os.PathLike, records: Sequence[ImageRecord], config: AugmentConfig,
                    sample: int | None = None, seed: int = 0,
                    progress: Callable[[int], None] | None = None) -> list[ImageRecord]:
    """Records of the training views of `records` (paths relative to `root`); `sample`: a random subset of
    that many, the same for both classes' shares. Unreadable images are left out."""
    chosen = list(records)
    if sample is not None and sample < len(chosen):
        order = np.random.default_rng([seed, 3]).permutation(len(chosen))[:sample]
        chosen = [chosen[i] for i in sorted(order)]
    found = []
    for record in chosen:
        try:
            found.append(view_record(record, os.fspath(Path(root) / record.path), config, seed))
        except ImageError:
            pass
        if progress:
            progress(1)
    return found
