"""Decoding inputs for the model, in DataLoader worker processes: what crosses from a worker to the model.

Each input becomes a `DecodedImage`: its size, its 224 global view, and either its pixels or, for a
large image, every patch the PSM could choose, cut at native resolution (`CandidateCrops`). The
candidate boxes depend only on the image size, so a worker can cut them before the model has seen
the image; for a large image they weigh far less than its pixels, so the pixels never leave the
worker and memory stays bounded whatever the megapixels.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .forensic import RealPhotoModel
from .images import ImageError, load_image, to_rgb_array
from .inputs import InputItem, display_path
from .provenance import Provenance, read_provenance
from .psm import WINDOWS, candidate_boxes
from .transforms import FEATURE_SIZE, INPUT_SIZE, Boxes, CropSource, global_view

# What the candidate crops of one image weigh (uint8): 25 x 224² + 36 x 112² pixels, 5.1 MB.
CANDIDATE_BYTES = sum((FEATURE_SIZE - window + 1) ** 2 * 3 * patch * patch for window, patch, _ in WINDOWS)


@dataclass
class CandidateCrops:
    """Every patch the PSM may pick for one image (a `CropSource`): per PSM window size, the K boxes
    (K x 4, [top, left, bottom, right]) and their crops (K x patch x patch x 3 uint8, the decoder's layout)."""

    boxes: list[torch.Tensor]
    crops: list[torch.Tensor]

    @classmethod
    def from_pixels(cls, array: np.ndarray) -> "CandidateCrops":
        """From H x W x 3 pixels (numpy copies the rows: faster than stacking strided torch views)."""
        boxes = candidate_boxes(array.shape[:2], (FEATURE_SIZE, FEATURE_SIZE))
        crops = [np.stack([array[top:bottom, left:right] for top, left, bottom, right in group.tolist()])
                 for group in boxes]
        return cls(boxes, [torch.from_numpy(group) for group in crops])

    def cut(self, boxes: Boxes) -> list[torch.Tensor]:
        """The chosen crops (boxes the PSM picked, so among the candidates) as 3 x patch x patch views."""
        where = {tuple(box): (g, k) for g, group in enumerate(self.boxes) for k, box in enumerate(group.tolist())}
        return [self.crops[g][k].permute(2, 0, 1) for g, k in (where[tuple(box)] for box in boxes)]


@dataclass
class DecodedImage:
    """One decoded input: its global view and where its patches come from, or the reason it failed."""

    index: int
    path: str
    size: tuple[int, int] = (0, 0)  # H, W
    view: torch.Tensor | None = None  # 3 x 224 x 224 uint8
    source: torch.Tensor | CropSource | None = None  # 3 x H x W uint8 pixels, or CandidateCrops
    error: str | None = None
    provenance: Provenance | None = None  # what the file declares about its origin, when asked for
    real_only: RealOnlyScore | None = None  # the real-only branch's score, when the checkpoint has the branch

    @classmethod
    def of(cls, index: int, path: str, array: np.ndarray, cut_candidates: bool = False,
           provenance: Provenance | None = None, real_only: RealOnlyScore | None = None) -> "DecodedImage":
        """From H x W x 3 uint8 pixels; with `cut_candidates`, a large image keeps only its candidate crops."""
        pixels = torch.from_numpy(array).permute(2, 0, 1)  # 3 x H x W over H x W x 3 memory, no copy
        size = (array.shape[0], array.shape[1])
        if cut_candidates and min(size) >= INPUT_SIZE and CANDIDATE_BYTES < array.size:
            source = CandidateCrops.from_pixels(array)
        else:
            source = pixels
        return cls(index, path, size, global_view(pixels), source, provenance=provenance, real_only=real_only)


@dataclass
class RealOnlyScore:
    """The real-only branch's score of one image's pixels, or why there is none (a too small image)."""

    score: float | None
    error: str | None = None

    @classmethod
    def of(cls, model: RealPhotoModel, array: np.ndarray) -> "RealOnlyScore":
        try:
            return cls(model.score(array))
        except ValueError as exc:  # smaller than the branch's minimum side: the fused model still scores it
            return cls(None, str(exc))


Prepare = Callable[[int, np.ndarray], np.ndarray]


class DecodeDataset(Dataset):
    """Decodes one input (a path, an InputItem or a PIL image) per item; runs inside DataLoader workers.
    `prepare(index, pixels)` may change the decoded pixels first (augmentation for cached training
    features, a perturbation for evaluation); a ValueError it raises is that item's error. With
    `provenance`, each file's metadata is read too (no pixels: a few microseconds without metadata), even
    when its pixels cannot be decoded. With `real_photo`, the real-only branch scores the pixels here, in the
    workers, beside the decoding (its cost overlaps the model's forward pass)."""

    def __init__(self, items: Sequence[InputItem | Image.Image | str | os.PathLike], max_pixels: int,
                 cut_candidates: bool = False, prepare: Prepare | None = None, provenance: bool = False,
                 real_photo: RealPhotoModel | None = None) -> None:
        self.items = items
        self.max_pixels = max_pixels
        self.cut_candidates = cut_candidates
        self.prepare = prepare
        self.provenance = provenance
        self.real_photo = real_photo

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> DecodedImage:
        item = self.items[index]
        provenance = None
        try:
            if isinstance(item, Image.Image):
                name = display_path(getattr(item, "filename", "")) or f"<image {index}>"
                array = to_rgb_array(item, self.max_pixels)
            else:
                item = item if isinstance(item, InputItem) else InputItem(os.fspath(item))
                name = display_path(item.path)
                if item.error:
                    return DecodedImage(index, name, error=item.error)
                if self.provenance:  # under its printable name, as the prediction's path
                    provenance = dataclasses.replace(read_provenance(item.path), path=name)
                array = load_image(item.path, self.max_pixels)
            if self.prepare is not None:
                array = self.prepare(index, array)
        except (ImageError, ValueError) as exc:
            return DecodedImage(index, name, error=str(exc), provenance=provenance)
        real_only = RealOnlyScore.of(self.real_photo, array) if self.real_photo is not None else None
        return DecodedImage.of(index, name, array, self.cut_candidates, provenance, real_only)
