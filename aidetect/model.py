"""The fused global/local detector network of Ju et al. (ICIP 2022), as the README's "Architecture" describes it.

`FusedDetector.forward` is the one forward pass, for training and inference alike: global views
-> backbone -> descriptors and final feature map -> patch boxes -> native crops (from the pixels,
or from crops the decode workers cut in advance) -> backbone -> descriptors -> `head` (embedding,
attention fusion, logit). It takes images as float tensors in [0, 1] and normalises them itself,
so a checkpoint carries its own preprocessing.

A descriptor is what a token is made of: the backbone's feature levels averaged over space and
concatenated (or the last level alone, as in the paper). With the backbone frozen, descriptors
never change, so training can cache them and learn `head` alone (features.py, heads.py): the same
`head` that `forward` ends with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .backbones import build_backbone, get_backbone_spec
from .config import FeatureLevels, ModelConfig, PatchStrategy
from .fusion import AttentionFusion
from .psm import random_boxes, rsz448_boxes, select_boxes
from .transforms import CropSource, crop_patches

STANDARDISATION = ("descriptor_mean", "descriptor_std")  # buffers: the descriptors' scaler


@dataclass
class Descriptors:
    """What the backbone saw of N images: the global view's descriptors (N x D), the patches' (N x P x D),
    the boxes (N x P x 4, [top, left, bottom, right]), their PSM scores (N x P, NaN for the ablations), the
    final feature map's channel sum (N x h x w) and, on request, the patches as the local branch saw them
    (N x P x 3 x 224 x 224)."""

    global_: torch.Tensor
    patches: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    activation: torch.Tensor
    crops: torch.Tensor | None = None


@dataclass
class FusedOutput:
    """One forward pass: logits (N), what the backbone saw, and on request the fusion's attention
    (layers x N x tokens)."""

    logits: torch.Tensor
    seen: Descriptors
    attention: torch.Tensor | None = None


class FusedDetector(nn.Module):
    def __init__(self, config: ModelConfig, pretrained_backbone: bool = False) -> None:
        super().__init__()
        spec = get_backbone_spec(config.backbone)
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained_backbone)
        self.all_levels = config.features == FeatureLevels.levels
        dim = sum(spec.levels) if self.all_levels else spec.channels
        # Descriptors are standardised before the embedding (levels differ in scale by orders of
        # magnitude); training sets these from its data, as a scaler before a linear model would be.
        self.register_buffer(STANDARDISATION[0], torch.zeros(dim))
        self.register_buffer(STANDARDISATION[1], torch.ones(dim))
        self.embed_proj = nn.Linear(dim, config.embed_dim)
        self.fusion = AttentionFusion(config.embed_dim, config.heads, config.layers)
        self.classifier = nn.Linear(config.embed_dim, 1)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.memory_format = torch.contiguous_format  # the inference engine picks channels_last on CPUs

    @property
    def descriptor_dim(self) -> int:
        return self.embed_proj.in_features

    def describe(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Descriptors (N x D) of [0, 1] images (N x 3 x 224 x 224) and their final feature map (N x C x 7 x 7)."""
        maps = self.backbone(((images - self.mean) / self.std).contiguous(memory_format=self.memory_format))
        used = maps if self.all_levels else maps[-1:]
        return torch.cat([level.float().mean(dim=(2, 3)) for level in used], dim=1), maps[-1]

    def embed(self, descriptors: torch.Tensor) -> torch.Tensor:
        """Standardisation, Linear + ReLU: a token from a descriptor (shared by both branches)."""
        return torch.relu(self.embed_proj((descriptors - self.descriptor_mean) / self.descriptor_std))

    def select(self, fm: torch.Tensor, image_sizes: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (N x P x 4, CPU int64) and scores for the configured patch strategy."""
        sizes = image_sizes.cpu()
        if self.config.patches == PatchStrategy.psm:
            boxes, scores = select_boxes(fm.detach(), sizes)
            return boxes.cpu(), scores.float().cpu()
        boxes = random_boxes(sizes, generator) if self.config.patches == PatchStrategy.random else rsz448_boxes(sizes)
        return boxes, torch.full(boxes.shape[:2], float("nan"))

    def head(self, global_descriptors: torch.Tensor, patch_descriptors: torch.Tensor,
             need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (N) from the global descriptors (N x D) and the patch descriptors (N x P x D, P may be 0):
        tokens, attention fusion, classifier; and on request the fusion's attention."""
        tokens = torch.cat((self.embed(patch_descriptors), self.embed(global_descriptors).unsqueeze(1)), dim=1)
        token, attention = self.fusion(tokens, need_weights)
        return self.classifier(token).squeeze(1), attention

    def descriptors(self, views: torch.Tensor, images: Sequence[torch.Tensor | CropSource] | None = None,
                    image_sizes: torch.Tensor | None = None, keep_crops: bool = False,
                    generator: torch.Generator | None = None) -> Descriptors:
        """The backbone's half of the forward pass. `views`: the N global views (N x 3 x 224 x 224 in [0, 1]);
        `images`: where the patches come from, per image its full-resolution pixels (3 x H x W, uint8 or
        float) or a `CropSource`; `image_sizes`: N x 2 (H, W), needed when a source is not pixels. Without
        `images` there are no patches (the single-branch warm-up of training)."""
        global_descriptors, fm = self.describe(views)
        activation = fm.detach().float().sum(dim=1)  # what the PSM ranks windows by, before window averaging
        if images is None:
            empty = torch.zeros(len(views), 0, 4, dtype=torch.long)
            no_patches = global_descriptors.new_zeros(len(views), 0, global_descriptors.shape[1])
            return Descriptors(global_descriptors, no_patches, empty, empty[..., 0].float(), activation)
        if image_sizes is None:
            image_sizes = torch.tensor([list(image.shape[-2:]) for image in images])
        boxes, scores = self.select(fm, image_sizes, generator)
        crops = crop_patches(images, boxes, views.device).to(views.dtype)
        n, p = crops.shape[:2]
        patch_descriptors = self.describe(crops.flatten(0, 1))[0].view(n, p, -1)
        return Descriptors(global_descriptors, patch_descriptors, boxes, scores, activation,
                           crops if keep_crops else None)

    def forward(self, views: torch.Tensor, images: Sequence[torch.Tensor | CropSource] | None = None,
                image_sizes: torch.Tensor | None = None, need_weights: bool = False, keep_crops: bool = False,
                generator: torch.Generator | None = None) -> FusedOutput:
        """The whole pass: `descriptors` (see there for the arguments), then `head`."""
        seen = self.descriptors(views, images, image_sizes, keep_crops, generator)
        logits, attention = self.head(seen.global_, seen.patches, need_weights)
        return FusedOutput(logits, seen, attention)
