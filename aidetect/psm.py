"""Patch selection: which regions of the full-resolution image the local branch looks at.

`select_boxes` is the paper's Patch Selection Module (PSM): pure tensor maths on the global
feature map, batched, no I/O, reproducing the boxes of the authors' published code bit for bit
(tests/test_psm_parity.py). `random_boxes` and `rsz448_boxes` are the paper's ablations.

Boxes are int64 rows [top, left, bottom, right] in original-image pixels, bottom/right exclusive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# (window on the feature map, patch side in image pixels, how many patches)
WINDOWS: tuple[tuple[int, int, int], ...] = ((3, 224, 3), (2, 112, 3))
NUM_PATCHES = sum(n for _, _, n in WINDOWS)


def activation_map(fm: torch.Tensor, window: int) -> torch.Tensor:
    """Channel sum of the window-averaged feature map (N x h' x w').

    Pool first, then sum, on an NCHW-contiguous float32 tensor: the reference's order, which
    decides real-arithmetic ties the same way.
    """
    pooled = F.avg_pool2d(fm.float().contiguous(), window, stride=1)
    return torch.sum(pooled, dim=1)


def window_boxes(index: torch.Tensor, map_size: tuple[int, int], fm_size: tuple[int, int],
                 image_sizes: torch.Tensor, patch: int) -> torch.Tensor:
    """Map window indices (N x 2: row, col on a map of `map_size`) to clamped image boxes (N x 4)."""
    (sh, sw), (h, w) = map_size, fm_size
    sizes = image_sizes.long()
    side = sizes.min(dim=1, keepdim=True).values
    base = (sizes - side) // 2
    rate = torch.stack(((2 * index[:, 0] + h - sh + 1) / (2 * h), (2 * index[:, 1] + w - sw + 1) / (2 * w)), dim=1)
    centre = (base + side * rate).long()
    top_left = centre - patch // 2
    bottom_right = centre + patch // 2 + patch % 2
    below = top_left.clamp(max=0)  # negative where the box starts before the image
    top_left, bottom_right = top_left - below, bottom_right - below
    over = (bottom_right - sizes).clamp(min=0)  # positive where it ends past the image
    top_left, bottom_right = (top_left - over).clamp(min=0), bottom_right - over
    return torch.cat((top_left, bottom_right), dim=1)


def candidate_boxes(image_size: tuple[int, int], fm_size: tuple[int, int]) -> list[torch.Tensor]:
    """Every box `select_boxes` can return for an image of `image_size` (H, W), per entry of WINDOWS:
    one row per window position, row-major (K x 4). The choice depends on the pixels, the candidates
    only on the size, so a decode worker can cut them all before the model has seen the image."""
    h, w = fm_size
    sizes = torch.tensor([image_size], dtype=torch.int64)
    out = []
    for window, patch, _ in WINDOWS:
        sh, sw = h - window + 1, w - window + 1
        index = torch.cartesian_prod(torch.arange(sh), torch.arange(sw))
        out.append(window_boxes(index, (sh, sw), (h, w), sizes.expand(len(index), 2), patch))
    return out


@torch.no_grad()
def select_boxes(fm: torch.Tensor, image_sizes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The PSM: 3 windows of 3x3 then 3 of 2x2, greedy argmax with 3x3 suppression.

    fm: N x C x h x w feature map (non-negative, as after a ReLU); image_sizes: N x 2 (H, W).
    Returns boxes (N x 6 x 4, int64) and the activation score of each chosen window (N x 6).
    """
    n, _, h, w = fm.shape
    image_sizes = image_sizes.to(fm.device)
    boxes, scores = [], []
    for window, patch, count in WINDOWS:
        score = activation_map(fm, window).unsqueeze(1)  # N x 1 x sh x sw
        sh, sw = score.shape[-2:]
        for _ in range(count):
            best, flat = score.view(n, -1).max(dim=1)
            index = torch.stack((flat // sw, flat % sw), dim=1)
            neighbourhood_max = F.max_pool2d(score, 3, stride=1, padding=1)
            score = score * (neighbourhood_max != best.view(-1, 1, 1, 1)).float()
            boxes.append(window_boxes(index, (sh, sw), (h, w), image_sizes, patch))
            scores.append(best)
    return torch.stack(boxes, dim=1), torch.stack(scores, dim=1)


def random_boxes(image_sizes: torch.Tensor, generator: torch.Generator | None = None,
                 count: int = NUM_PATCHES, patch: int = 224) -> torch.Tensor:
    """The "RdmCrop" ablation: `count` uniformly placed patch x patch boxes per image (clamped to small images)."""
    rows = []
    for height, width in image_sizes.tolist():
        ph, pw = min(patch, height), min(patch, width)
        top = torch.randint(0, height - ph + 1, (count,), generator=generator)
        left = torch.randint(0, width - pw + 1, (count,), generator=generator)
        rows.append(torch.stack((top, left, top + ph, left + pw), dim=1))
    return torch.stack(rows)


def rsz448_boxes(image_sizes: torch.Tensor) -> torch.Tensor:
    """The "Rsz448" ablation: the four corner and the centre 224 crops of the image resized to 448x448,
    expressed in original pixels (cropping there and resizing to 224 equals cropping the 448 image)."""
    unit = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2], [1, 0, 2, 1], [1, 1, 2, 2], [0.5, 0.5, 1.5, 1.5]])
    scale = image_sizes.float().repeat(1, 2).unsqueeze(1) / 2  # N x 1 x 4: (H, W, H, W) / 2
    boxes = (unit.unsqueeze(0) * scale).round().long()
    boxes[..., 2:] = torch.maximum(boxes[..., 2:], boxes[..., :2] + 1)  # never empty on tiny images
    return boxes
