"""Preprocessing shared by training and inference: the global view, and the native-resolution patches.

The global branch sees the image's shorter side resized to 224 and centre-cropped; the local
branch sees patches cut from the full-resolution pixels and brought to 224 only if they are not
224 already. Plain torch (no torchvision), so that loading the scanner stays fast.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
import torch.nn.functional as F

INPUT_SIZE = 224
FEATURE_SIZE = INPUT_SIZE // 32  # every backbone has stride 32: a 7 x 7 feature map
MAX_VIEW_ASPECT = 32  # a longer side beyond 32 shorter sides is trimmed before the resize

Boxes = Sequence[Sequence[int]]  # rows [top, left, bottom, right], bottom/right exclusive


def center_crop(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central height x width of `pixels` (... x H x W), placed as torchvision places it."""
    top = int(round((pixels.shape[-2] - height) / 2.0))
    left = int(round((pixels.shape[-1] - width) / 2.0))
    return pixels[..., top:top + height, left:left + width]


def global_view(pixels: torch.Tensor) -> torch.Tensor:
    """The global branch's input: shorter side to 224 (bilinear, antialiased), centre 224 crop; uint8 3x224x224.

    A strip (a 1 x 20000 image) would resize to 224 x 4.5 million pixels first; its central band of
    32:1 holds the centre crop, so only that band is resized and memory stays bounded."""
    height, width = pixels.shape[-2:]
    keep = MAX_VIEW_ASPECT * min(height, width)
    if max(height, width) > keep:
        pixels = center_crop(pixels, min(height, keep), min(width, keep))
        height, width = pixels.shape[-2:]
    short, long = sorted((height, width))
    size = (INPUT_SIZE, int(INPUT_SIZE * long / short))
    size = size if height <= width else size[::-1]
    view = F.interpolate(pixels.unsqueeze(0), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return center_crop(view, INPUT_SIZE, INPUT_SIZE)


def view_box(height: int, width: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the central square that the global view shows."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return left, top, left + side, top + side


class CropSource(Protocol):
    """Something that holds an image's native-resolution patches without its pixels (the decode
    workers' candidate crops of a large image)."""

    def cut(self, boxes: Boxes) -> list[torch.Tensor]: ...


def native_crops(source: torch.Tensor | CropSource, boxes: Boxes) -> list[torch.Tensor]:
    """The patches `boxes` of one image, as 3 x h x w views: cut from its pixels (3 x H x W, slicing
    copies nothing) or taken from a source that cut them in advance."""
    if isinstance(source, torch.Tensor):
        return [source[:, top:bottom, left:right] for top, left, bottom, right in boxes]
    return source.cut(boxes)


def resize_patches(patches: list[list[torch.Tensor]], device: torch.device | str | None = None) -> torch.Tensor:
    """N lists of P native crops (3 x h x w, uint8 or float in [0, 1]) -> N x P x 3 x 224 x 224 float on
    `device` (default: the crops'). 224 crops stay as they are, others are resized bilinear with
    align_corners=True as in the published code. Only the crops are converted to float (never a
    whole image), and crops of one shape travel and resize as one batch."""
    flat = [patch for row in patches for patch in row]
    device = flat[0].device if device is None else device
    out = torch.empty(len(flat), 3, INPUT_SIZE, INPUT_SIZE, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, patch in enumerate(flat):
        groups.setdefault(tuple(patch.shape[-2:]), []).append(i)
    for shape, index in groups.items():
        batch = torch.stack([flat[i] for i in index]).to(device, non_blocking=True)
        batch = batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()
        if shape != (INPUT_SIZE, INPUT_SIZE):
            batch = F.interpolate(batch, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=True)
        out[torch.tensor(index, device=device)] = batch
    return out.view(len(patches), -1, 3, INPUT_SIZE, INPUT_SIZE)


def crop_patches(sources: Sequence[torch.Tensor | CropSource], boxes: torch.Tensor,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Each image's `boxes` (N x P x 4) cut at native resolution and brought to 224 x 224:
    N x P x 3 x 224 x 224 float in [0, 1]."""
    return resize_patches([native_crops(source, rows) for source, rows in zip(sources, boxes.tolist())], device)
