"""Cached descriptors of a frozen backbone: the same numbers the engine computes, stored once per image and view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

import aidetect.training.descriptor_cache as features
from aidetect.checkpoint import CheckpointInfo
from aidetect.config import AugmentConfig, ModelConfig
from aidetect.engine import Detector
from aidetect.model import FusedDetector
from aidetect.training.descriptor_cache import ViewRecipe, extract
from aidetect.training.head_fit import logits_of


@pytest.fixture()
def model() -> FusedDetector:
    torch.manual_seed(0)
    return FusedDetector(ModelConfig(backbone="tiny")).eval()


@pytest.fixture()
def samples(tmp_path) -> list[tuple[str, int]]:
    sizes = [(300, 200), (64, 500), (240, 240), (1300, 1250)]  # the last one travels as candidate crops
    return [(str(write_image(tmp_path / f"{i}.jpg", w, h, seed=i, quality=90)), i % 2) for i, (w, h) in enumerate(sizes)]


def test_cached_descriptors_give_the_engines_logits(model, samples, tmp_path):
    """View 0 without augmentation is the image as `scan` sees it: the head on its descriptors is the model."""
    found = extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    assert found.global_.shape == (4, 1, model.descriptor_dim) and found.patches.shape[:3] == (4, 1, 6)
    logits = torch.from_numpy(logits_of(model, found))
    with torch.no_grad():  # standardise the logits, so that agreement means something
        model.classifier.weight.div_(logits.std())
        model.classifier.bias.sub_(logits.mean()).div_(logits.std())
    info = CheckpointInfo(tmp_path / "m.pt", model.config, {"threshold": 0.5})
    engine = [p.probability for p in Detector(model, info, device="cpu").predict([p for p, _ in samples])]
    cached = 1 / (1 + np.exp(-logits_of(model, found)))
    assert np.ptp(engine) > 0.01 and np.allclose(cached, engine, atol=2e-3)  # float16 storage


def test_the_cache_is_used_and_a_changed_file_is_described_again(model, samples, tmp_path, monkeypatch):
    first = extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    calls = []
    original = features._describe
    monkeypatch.setattr(features, "_describe", lambda model, jobs, *rest: calls.append(jobs) or original(model, jobs, *rest))
    again = extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    assert calls == [] and np.array_equal(first.global_, again.global_)
    write_image(tmp_path / "0.jpg", 310, 200, seed=9, quality=90)  # same name, new content
    extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    assert calls == [[(samples[0][0], 0)]]


def test_a_backbone_with_other_weights_never_reads_anothers_descriptors(model, samples, tmp_path):
    """A fine-tuned (or --init) backbone of the same name describes images differently: its own cache."""
    first = extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    with torch.no_grad():
        next(model.backbone.parameters()).add_(0.5)
    second = extract(model, samples, ViewRecipe(), cache=tmp_path / "cache", device="cpu", workers=0)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2
    assert not np.array_equal(first.global_, second.global_)


def test_views_repeat_from_their_seed_and_differ_between_seeds(model, samples, tmp_path):
    recipe = ViewRecipe(views=2, augment=AugmentConfig(blur_prob=0.5, jpeg_prob=0.5, reencode_prob=0.5, rescale_prob=0.5))
    one = extract(model, samples, recipe, cache=None, device="cpu", workers=0)
    two = extract(model, samples, recipe, cache=tmp_path / "cache", device="cpu", workers=2)  # workers change nothing
    other = extract(model, samples, ViewRecipe(2, recipe.augment, seed=1), cache=None, device="cpu", workers=0)
    assert one.global_.shape[1] == 2 and np.array_equal(one.global_, two.global_)
    assert not np.array_equal(one.global_[:, 0], one.global_[:, 1])  # two different views
    assert not np.array_equal(one.global_, other.global_)
    first = extract(model, samples, ViewRecipe(1, recipe.augment), cache=tmp_path / "cache", device="cpu")
    assert np.array_equal(first.global_[:, 0], one.global_[:, 0])  # view 0 is view 0, however many are asked for


def test_unreadable_images_are_left_out_with_their_reason(model, samples, tmp_path):
    (tmp_path / "bad.jpg").write_text("not an image")
    Image.new("RGB", (10, 10)).save(tmp_path / "small.png")
    found = extract(model, [*samples, (str(tmp_path / "bad.jpg"), 1), (str(tmp_path / "small.png"), 0)], ViewRecipe(),
                    cache=tmp_path / "cache", device="cpu", workers=0)
    assert len(found) == 5 and found.errors == [(str(tmp_path / "bad.jpg"), "not an image (unrecognised format)")]
    again = extract(model, [(str(tmp_path / "bad.jpg"), 1)], ViewRecipe(), cache=tmp_path / "cache", device="cpu")
    assert again.errors == found.errors and len(again) == 0
