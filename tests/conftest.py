"""Shared fixtures: a tiny random checkpoint built on the fly, and a detector on it (helpers.py has the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the `tiny` backbone with seeded random weights. The classifier is scaled up and
    centred on a grey image, so probabilities spread around 0.5 and comparisons at 1e-4 mean something."""
    import torch

    from aidetect.checkpoint import save_checkpoint
    from aidetect.config import ModelConfig
    from aidetect.model import FusedDetector

    torch.manual_seed(0)
    model = FusedDetector(ModelConfig(backbone="tiny")).eval()
    grey = torch.full((1, 3, 224, 224), 128, dtype=torch.uint8)
    with torch.no_grad():
        model.classifier.weight.mul_(50)
        model.classifier.bias.sub_(model(grey.float() / 255, grey).logits)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.pt", model, {"name": "tiny-test"})


@pytest.fixture(scope="session")
def tiny_detector(tiny_checkpoint):
    from aidetect.engine import Detector

    return Detector.load(tiny_checkpoint, device="cpu", workers=0, batch_size=4)
