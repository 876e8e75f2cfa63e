"""The fused global/local detector network (DESIGN.md, "The model, exactly").

`FusedDetector` takes images as float tensors in [0, 1] and normalises them itself, so a
checkpoint always carries its own preprocessing. The steps are exposed separately
(`features`, `embed`, `select`, `fuse`) because the inference engine runs the global pass,
then cuts crops from full-resolution pixels on the CPU, then runs the local pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import build_backbone, get_backbone_spec
from .fusion import AttentionFusion
from .psm import random_boxes, rsz448_boxes, select_boxes

PatchStrategy = Literal["psm", "random", "rsz448"]
PATCH_STRATEGIES: tuple[str, ...] = ("psm", "random", "rsz448")
INPUT_SIZE = 224
FEATURE_SIZE = INPUT_SIZE // 32  # every backbone has stride 32: a 7 x 7 feature map


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    backbone: str = "efficientnet_lite0"
    embed_dim: int = 128
    heads: int = 4
    layers: int = 3
    patches: str = "psm"

    def __post_init__(self) -> None:
        get_backbone_spec(self.backbone)  # fail early on unknown names
        if self.patches not in PATCH_STRATEGIES:
            raise ValueError(f"unknown patch strategy {self.patches!r}; choose one of {', '.join(PATCH_STRATEGIES)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class FusedOutput:
    """One forward pass: logits (N), PSM boxes (N x P x 4), PSM scores (N x P, NaN for ablations),
    the global feature map's channel sum (N x h x w) and, on request, fusion attention."""

    logits: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    activation: torch.Tensor
    attention: torch.Tensor | None = None


class FusedDetector(nn.Module):
    def __init__(self, config: ModelConfig, pretrained_backbone: bool = False) -> None:
        super().__init__()
        spec = get_backbone_spec(config.backbone)
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained_backbone)
        self.embed_proj = nn.Linear(spec.channels, config.embed_dim)
        self.fusion = AttentionFusion(config.embed_dim, config.heads, config.layers)
        self.classifier = nn.Linear(config.embed_dim, 1)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Last feature map of [0, 1] images (N x 3 x 224 x 224)."""
        return self.backbone((images - self.mean) / self.std)

    def embed(self, fm: torch.Tensor) -> torch.Tensor:
        """Linear + ReLU of the globally pooled feature map (shared by both branches)."""
        return torch.relu(self.embed_proj(fm.mean(dim=(2, 3))))

    def select(self, fm: torch.Tensor, image_sizes: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (N x P x 4, CPU int64) and scores for the configured patch strategy."""
        sizes = image_sizes.cpu()
        if self.config.patches == "psm":
            boxes, scores = select_boxes(fm.detach(), sizes)
            return boxes.cpu(), scores.float().cpu()
        boxes = random_boxes(sizes, generator) if self.config.patches == "random" else rsz448_boxes(sizes)
        return boxes, torch.full(boxes.shape[:2], float("nan"))

    def fuse(self, global_embedding: torch.Tensor, patch_embeddings: torch.Tensor,
             need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (N) from N x P x D patch embeddings and the N x D global embedding."""
        tokens = torch.cat((patch_embeddings, global_embedding.unsqueeze(1)), dim=1)
        token, attention = self.fusion(tokens, need_weights)
        return self.classifier(token).squeeze(1), attention

    def forward(self, views: torch.Tensor, images: list[torch.Tensor] | torch.Tensor | None = None,
                image_sizes: torch.Tensor | None = None, need_weights: bool = False,
                generator: torch.Generator | None = None) -> FusedOutput:
        """Full pass: `views` are the 224 global views, `images` the full-resolution pixels
        (a list of 3 x H x W tensors, or one N x 3 x H x W tensor) that the crops come from.
        Without `images` only the global token is fused (single-branch warm-up in training)."""
        fm = self.features(views)
        global_embedding = self.embed(fm)
        if images is None:
            no_patches = global_embedding.new_zeros(len(views), 0, global_embedding.shape[1])
            logits, attention = self.fuse(global_embedding, no_patches, need_weights)
            empty = torch.zeros(len(views), 0, 4, dtype=torch.long)
            return FusedOutput(logits, empty, empty[..., 0].float(), activation_of(fm), attention)
        if image_sizes is None:
            image_sizes = torch.tensor([list(img.shape[-2:]) for img in images])
        boxes, scores = self.select(fm, image_sizes, generator)
        crops = crop_patches(images, boxes, views.device).to(views.dtype)
        n, p = crops.shape[:2]
        patch_embeddings = self.embed(self.features(crops.flatten(0, 1))).view(n, p, -1)
        logits, attention = self.fuse(global_embedding, patch_embeddings, need_weights)
        return FusedOutput(logits, boxes, scores, activation_of(fm), attention)


def activation_of(fm: torch.Tensor) -> torch.Tensor:
    """Channel sum of the feature map: what the PSM ranks windows by (before window averaging)."""
    return fm.detach().float().sum(dim=1)


def crop_patches(images: list[torch.Tensor] | torch.Tensor, boxes: torch.Tensor,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Cut each box from its full-resolution image (3 x H x W, uint8 or float in [0, 1]) and bring it
    to 224 x 224 (see `resize_patches`). Returns N x P x 3 x 224 x 224 float in [0, 1]."""
    return resize_patches([cut_boxes(image, image_boxes) for image, image_boxes in zip(images, boxes.tolist())], device)


def cut_boxes(image: torch.Tensor, boxes: list[list[int]]) -> list[torch.Tensor]:
    """Views of `image` (3 x H x W) for boxes [top, left, bottom, right]: slicing copies nothing."""
    return [image[:, top:bottom, left:right] for top, left, bottom, right in boxes]


def resize_patches(patches: list[list[torch.Tensor]], device: torch.device | str | None = None) -> torch.Tensor:
    """N lists of P native crops (3 x h x w, uint8 or float in [0, 1]) -> N x P x 3 x 224 x 224 float on
    `device` (default: the crops'). 224 crops stay as they are, others are resized bilinear with
    align_corners=True as in the published code. Only the crops are converted to float (never a
    whole image), and crops of one shape travel and resize as one batch: 112 crops in one call."""
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
