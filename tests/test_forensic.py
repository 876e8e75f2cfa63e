"""The real-only forensic branch (aidetect.forensic): fitting on tiny photo-like images, its state, its
scores on degenerate inputs, determinism, and that it tells an upsampling trace from held-out reals."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from aidetect.forensic import ForensicConfig, RealPhotoModel, fit_real_model, tile_boxes
from aidetect.forensic.filter_fit import support_mask
from aidetect.forensic.lstsq import sum_to_one_solve
from helpers import photo_pixels

TINY = ForensicConfig(filters=4, filter_size=5, neighbourhood=7, filter_steps=40, filter_crops=128, samples=512,
                      crop=128, pca_dims=8, components=2, augment_views=1, holdout=0.2, tile=64, tile_samples=256)


def reals(count: int, start: int = 0) -> list[np.ndarray]:
    return [photo_pixels(96, 80, seed=start + i) for i in range(count)]


def upsampled(count: int, start: int = 500) -> list[np.ndarray]:
    """Photo-like images enlarged 2x by nearest neighbour: a periodic upsampling trace."""
    return [np.repeat(np.repeat(photo_pixels(48, 40, seed=start + i), 2, 0), 2, 1) for i in range(count)]


@pytest.fixture(scope="module")
def model() -> RealPhotoModel:
    return fit_real_model(reals(30), TINY)


def test_fit_gives_constrained_filters_and_a_threshold(model):
    bank = model.bank
    assert bank.shape == (4, 5, 5)
    assert np.allclose(bank[:, 2, 2], 0) and np.allclose(bank.sum(axis=(1, 2)), 1, atol=1e-5)
    assert model.fitted_images == 24 and model.held_out_images == 6
    assert math.isfinite(model.threshold) and math.isfinite(model.tile_threshold)
    description = model.describe(reals(1, 99)[0])
    assert description.shape == (TINY.descriptor_size,) == (4 * 3 * 24,)
    assert np.all(np.isfinite(description))


def test_state_round_trip_through_a_weights_only_checkpoint(model):
    state = model.to_state()
    assert all(isinstance(v, (torch.Tensor, int, float, str)) for v in state.values())
    buffer = io.BytesIO()
    torch.save({"forensic": state}, buffer)
    buffer.seek(0)
    restored = RealPhotoModel.from_state(torch.load(buffer, weights_only=True)["forensic"])
    assert restored.config == model.config
    for pixels in reals(3, 200) + upsampled(2):
        assert restored.score(pixels) == model.score(pixels)
    image = photo_pixels(200, 150, seed=7)
    assert np.array_equal(restored.score_map(image), model.score_map(image))
    with pytest.raises(ValueError, match="format"):
        RealPhotoModel.from_state({"format": "something else"})


@pytest.mark.parametrize("pixels", [
    np.full((64, 64, 3), 128, np.uint8),  # flat grey
    np.full((40, 70, 3), (200, 30, 90), np.uint8),  # flat colour
    np.zeros((16, 16, 3), np.uint8),  # the smallest accepted size, black
    np.full((16, 900, 3), 255, np.uint8),  # a thin strip
    photo_pixels(2000, 16, seed=3),  # huge aspect, textured
    photo_pixels(64, 64, seed=4)[..., 0],  # grey H x W
])
def test_degenerate_images_score_finite(model, pixels):
    assert math.isfinite(model.score(pixels))
    assert np.all(np.isfinite(model.score_map(pixels)))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 2, 3), (2, 1, 3), (2, 2, 3), (15, 400, 3)])
def test_too_small_images_raise_a_clear_value_error(model, shape):
    with pytest.raises(ValueError, match="too small"):
        model.score(np.full(shape, 90, np.uint8))


@pytest.mark.parametrize("bad", [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 2), np.uint8), "a path"])
def test_wrong_pixel_arrays_raise_value_error(model, bad):
    with pytest.raises(ValueError):
        model.score(bad)


def test_same_seed_same_model(model):
    again = fit_real_model(reals(30), TINY)
    assert np.array_equal(again.bank, model.bank) and again.threshold == model.threshold
    pixels = reals(1, 300)[0]
    assert again.score(pixels) == model.score(pixels)
    assert not np.array_equal(fit_real_model(reals(30), ForensicConfig(**{**TINY.to_dict(), "seed": 1})).bank, model.bank)


def test_upsampling_trace_scores_above_held_out_reals(model):
    held_out = [model.score(p) for p in reals(12, 1000)]
    traced = [model.score(p) for p in upsampled(12)]
    assert min(traced) > max(held_out)
    assert np.mean(np.array(traced) > model.threshold) == 1.0
    assert np.mean(np.array(held_out) > model.threshold) <= 0.25


def test_score_map_matches_its_tile_grid(model):
    image = photo_pixels(300, 170, seed=9)
    grid = model.score_map(image)
    boxes = tile_boxes(170, 300, model.config)
    assert grid.shape == boxes.shape[:2] == (3, 5)
    assert boxes[-1, -1, 2] == 300 and boxes[-1, -1, 3] == 170
    traced = np.repeat(np.repeat(photo_pixels(150, 85, seed=9), 2, 0), 2, 1)
    assert model.score_map(traced).mean() > grid.mean()


def test_least_squares_baseline_respects_its_supports(tmp_path):
    config = ForensicConfig(**{**TINY.to_dict(), "filter_kind": "least_squares", "holdout": 0.0})
    paths = []
    for i, pixels in enumerate(reals(8, 50)):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    model = fit_real_model(paths + [tmp_path / "broken.jpg"], config)  # paths decoded; the broken one skipped
    assert model.fitted_images == 8 and model.held_out_images == 0
    for k, name in enumerate(["ring", "ring3", "causal", "anticausal"]):
        outside = ~support_mask(name, 5)
        assert np.all(model.bank[k][outside] == 0)
    assert np.allclose(model.bank.sum(axis=(1, 2)), 1, atol=1e-5)
    assert math.isfinite(model.score(reals(1, 77)[0]))


def test_sum_to_one_solve_recovers_weights_and_handles_zeros():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 400, 5))
    truth = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    y = x @ truth
    solved = sum_to_one_solve(np.einsum("bnm,bnl->bml", x, x), np.einsum("bnm,bn->bm", x, y), 1e-9)
    assert np.allclose(solved, truth, atol=1e-6)
    flat = sum_to_one_solve(np.zeros((1, 4, 4)), np.zeros((1, 4)), 1e-3)
    assert np.allclose(flat, 0.25)


def test_config_is_validated():
    with pytest.raises(ValueError, match="odd"):
        ForensicConfig(filter_size=4)
    with pytest.raises(ValueError, match="filter kind"):
        ForensicConfig(filter_kind="magic")
    assert ForensicConfig().descriptor_size == 8 * 3 * 60
