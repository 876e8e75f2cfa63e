"""End-to-end on the shipped checkpoint: found with no flags, small, and it separates val images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SCAN_OPTIONS, run_cli, shared_file
from sklearn.metrics import average_precision_score

from aidetect.checkpoint import ENV_VAR, default_weights_path, read_checkpoint, resolve_weights
from aidetect.engine import Detector


@pytest.fixture()
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_default_checkpoint_is_found_without_flags_and_documented(no_env):
    path = resolve_weights(None)
    assert path == default_weights_path() and path.is_file()
    assert path.stat().st_size < 50 * 2**20
    info, _ = read_checkpoint(path)
    assert info.config.backbone == "efficientnet_lite0" and info.config.patches == "psm"
    assert 0 < info.threshold < 1 and "calibration" in info.metadata and "training_data" in info.metadata
    assert (path.parent / "MODEL_CARD.md").is_file()


def test_scan_with_the_default_checkpoint(no_env):
    folder = shared_file("data/test/dalle2")
    result = run_cli("scan", folder, "--json", *SCAN_OPTIONS)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["count"] == 18 and doc["checkpoint"]["backbone"] == "efficientnet_lite0"
    for item in doc["results"]:
        assert 0.0 <= item["probability"] <= 1.0 and len(item["boxes"]) == 6
        for box in item["boxes"]:
            assert 0 <= box["x0"] < box["x1"] <= item["width"] and 0 <= box["y0"] < box["y1"] <= item["height"]


def test_default_checkpoint_separates_validation_images(no_env):
    """A sample of the validation set (never trained on): the shipped model must rank fakes above reals."""
    reals = sorted(shared_file("data/val/0_real/imagenet").iterdir())[::12]
    fakes = sorted(shared_file("data/val/1_fake/sd15").iterdir())[::12]
    detector = Detector.load(device="cpu", workers=0, batch_size=8)
    probs = [p.probability for p in detector.predict(reals + fakes)]
    labels = [0] * len(reals) + [1] * len(fakes)
    assert average_precision_score(labels, probs) > 0.9
    assert np.mean([p < detector.threshold for p in probs[: len(reals)]]) >= 0.75
