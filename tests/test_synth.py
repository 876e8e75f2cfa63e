"""`aidetect synth`: aligned fakes from real photos, in their twins' format, ready for `train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import photo_pixels, run_cli, truncated_jpeg
from PIL import Image, JpegImagePlugin

from aidetect.datasets import FAKE, REAL, labelled_images
from aidetect.images import load_image
from aidetect.synth.autoencoders import AUTOENCODERS, build_autoencoder
from aidetect.synth.build import _pair_statistics, find_reals, reconstruct, save_like, synthesize
from aidetect.synth.config import FitConfig, SynthConfig
from aidetect.synth.fit import fit_autoencoder


@pytest.fixture
def real_root(tmp_path: Path) -> Path:
    """A CNNDetection root: six JPEG reals (two qualities, 4:2:0 and 4:4:4), a PNG real, a fake to ignore."""
    root = tmp_path / "train"
    for index in range(6):
        folder = root / "0_real" / ("cats" if index % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_pixels(72 + 8 * index, 64 + 4 * index, index)).save(
            folder / f"img{index}.jpg", quality=60 if index % 2 else 92, subsampling=2 if index < 3 else 0)
    Image.fromarray(photo_pixels(70, 66, 9)).save(root / "0_real" / "dogs" / "flat.png")
    (root / "1_fake" / "sd").mkdir(parents=True)
    Image.fromarray(photo_pixels(64, 64, 7)).save(root / "1_fake" / "sd" / "fake.jpg")
    return root


FAST = FitConfig(crop=16, batch_size=4, max_steps=3, check_every=100)  # far from sharp: ends at its limit
FAST_SHARP = FitConfig(crop=16, batch_size=4, max_steps=3, check_every=100, min_sharpness=1e-9)


@pytest.fixture
def easy_targets(monkeypatch):
    """Every family's PSNR target out of the way, so that FAST_SHARP counts as sharp."""
    for name, spec in list(AUTOENCODERS.items()):
        monkeypatch.setitem(AUTOENCODERS, name, type(spec)(**{**spec.__dict__, "target_psnr": -100.0}))


def test_find_reals_takes_only_reals_and_drops_label_folders(real_root):
    reals = find_reals(real_root)
    assert len(reals) == 7
    assert all("1_fake" not in str(path) for path, _ in reals)
    assert Path("dogs/img0.jpg") in [rel for _, rel in reals]
    # a plain folder of photos: every image is a real
    assert len(find_reals(real_root / "0_real" / "cats")) == 3


def test_reconstruct_keeps_any_size():
    model = build_autoencoder("ldm8")
    for height, width in ((37, 51), (8, 8), (5, 70)):
        assert reconstruct(model, photo_pixels(width, height, 0)).shape == (height, width, 3)


def test_saved_fakes_copy_the_twins_jpeg_tables_and_subsampling(tmp_path):
    for quality, subsampling in ((55, 2), (93, 0)):
        twin = tmp_path / f"twin{quality}.jpg"
        Image.fromarray(photo_pixels(48, 40, 1)).save(twin, quality=quality, subsampling=subsampling)
        written = save_like(photo_pixels(48, 40, 2), twin, tmp_path / "fake" / twin.name)
        with Image.open(twin) as a, Image.open(written) as b:
            assert b.format == "JPEG" and b.quantization == a.quantization
            assert JpegImagePlugin.get_sampling(b) == JpegImagePlugin.get_sampling(a) == subsampling
    png_twin = tmp_path / "twin.png"
    Image.fromarray(photo_pixels(20, 20, 3)).save(png_twin)
    written = save_like(photo_pixels(20, 20, 4), png_twin, tmp_path / "fake" / "twin.png")
    assert np.array_equal(load_image(written), photo_pixels(20, 20, 4))  # lossless twin, lossless fake


def test_trivial_statistics_flag_blurred_or_brightened_fakes_and_not_identical_ones():
    import cv2

    reals = [photo_pixels(64, 64, seed) for seed in range(8)]
    blurred = _pair_statistics([(cv2.GaussianBlur(real, (0, 0), 1.5), real) for real in reals])
    # blurred fakes have less Laplacian energy: that statistic separates them, colour does not
    assert blurred["sharpness_ratio"] < 0.5 and blurred["sharpness_auc"] < 0.1
    assert 0.3 < blurred["luminance_auc"] < 0.7 and 0.3 < blurred["saturation_auc"] < 0.7
    same = _pair_statistics([(real, real) for real in reals])
    assert same["sharpness_ratio"] == pytest.approx(1.0)
    assert same["sharpness_auc"] == same["luminance_auc"] == same["saturation_auc"] == pytest.approx(0.5)
    brighter = _pair_statistics([(np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8), real) for real in reals])
    assert brighter["luminance_auc"] > 0.75  # a decoder's brightness shift shows up


def test_training_stops_once_sharp_and_says_when_it_did_not(monkeypatch):
    photos = [photo_pixels(48, 48, seed) for seed in range(4)]
    spec = AUTOENCODERS["pixelshuffle"]
    monkeypatch.setitem(AUTOENCODERS, "pixelshuffle", type(spec)(**{**spec.__dict__, "target_psnr": -100.0}))
    easy = FitConfig(crop=16, batch_size=2, check_every=2, max_steps=50, min_sharpness=1e-9)
    _, result = fit_autoencoder("pixelshuffle", photos, photos, easy)
    assert result.reached and result.steps == 2  # stopped at the first check that met the targets
    hard = FitConfig(crop=16, batch_size=2, check_every=2, max_steps=4, min_sharpness=0.999999)
    _, result = fit_autoencoder("pixelshuffle", photos, photos, hard)
    assert not result.reached and result.steps == 4


def test_synth_writes_trainable_aligned_pairs_deterministically(real_root, tmp_path, easy_targets):
    config = SynthConfig(archs=("transposed", "pixelshuffle"), fit=FAST_SHARP)
    report = synthesize(real_root, tmp_path / "out", config)
    out = tmp_path / "out"
    assert report.reals == 7 and [a.fit.arch for a in report.archs] == ["transposed", "pixelshuffle"]
    assert all(a.images == 7 and a.fit.reached for a in report.archs)
    assert [a.folder for a in report.archs] == ["1_fake/transposed", "1_fake/pixelshuffle"]
    items = labelled_images(out)
    assert sum(label == REAL for _, label in items) == 7 and sum(label == FAKE for _, label in items) == 14
    for arch in config.archs:
        for path, rel in find_reals(real_root):
            fake = out / "1_fake" / arch / rel
            real_link = out / "0_real" / rel
            assert real_link.resolve() == path.resolve()
            with Image.open(fake) as written, Image.open(path) as twin:
                assert (written.format, written.size) == (twin.format, twin.size)
        assert (out / "models" / f"{arch}.pt").exists()
    saved = json.loads((out / "synth.json").read_text())
    assert saved["archs"][0]["fit"]["steps"] == 3 and 0.0 <= saved["archs"][0]["sharpness_auc"] <= 1.0

    again = synthesize(real_root, tmp_path / "again", config)  # same seed, fresh folder: same bytes
    for arch in config.archs:
        for _, rel in find_reals(real_root):
            assert (out / "1_fake" / arch / rel).read_bytes() == (tmp_path / "again" / "1_fake" / arch / rel).read_bytes()
    assert [a.psnr for a in again.archs] == [a.psnr for a in report.archs]


def test_a_second_run_reuses_the_trained_networks_and_trains_on_when_given_more_steps(real_root, tmp_path):
    config = SynthConfig(archs=("nearest",), fit=FAST)
    first = synthesize(real_root, tmp_path / "out", config)
    model_file = tmp_path / "out" / "models" / "nearest.pt"
    stamp = model_file.stat().st_mtime_ns
    second = synthesize(real_root, tmp_path / "out", config)
    assert model_file.stat().st_mtime_ns == stamp and second.archs[0].fit == first.archs[0].fit
    more = SynthConfig(archs=("nearest",), fit=FitConfig(crop=16, batch_size=4, max_steps=5, check_every=100))
    third = synthesize(real_root, tmp_path / "out", more)  # stopped at its limit (3 steps): trains 2 more
    assert third.archs[0].fit.steps == 5 and model_file.stat().st_mtime_ns != stamp
    assert third.archs[0].fit.seconds >= first.archs[0].fit.seconds


def test_unsharp_fakes_stay_out_of_the_training_folders_until_sharp(real_root, tmp_path, easy_targets):
    out = tmp_path / "out"
    blurry = synthesize(real_root, out, SynthConfig(archs=("nearest",), fit=FAST))
    assert not blurry.archs[0].fit.reached and blurry.archs[0].folder == "unsharp/nearest"
    assert len(list((out / "unsharp" / "nearest").rglob("*.*"))) == 7
    assert {label for _, label in labelled_images(out)} == {REAL}  # train would see no fake of this family
    more = FitConfig(crop=16, batch_size=4, max_steps=5, check_every=100, min_sharpness=1e-9)
    sharp = synthesize(real_root, out, SynthConfig(archs=("nearest",), fit=more))  # trains on, now meets the targets
    assert sharp.archs[0].fit.reached and sharp.archs[0].folder == "1_fake/nearest"
    assert not (out / "unsharp" / "nearest").exists()
    assert sum(label == FAKE for _, label in labelled_images(out)) == 7


def test_perceptual_family_trains(real_root, tmp_path):
    _, result = fit_autoencoder("ldm8", [photo_pixels(64, 64, s) for s in range(3)], [photo_pixels(64, 64, 5)],
                                FitConfig(crop=16, batch_size=2, max_steps=2, check_every=1))
    assert result.steps == 2 and np.isfinite(result.psnr)


def test_adversarial_family_learns_against_the_discriminator_from_its_start_step():
    photos = [photo_pixels(64, 64, s) for s in range(3)]

    def decoder_after(**adversarial) -> list[torch.Tensor]:
        config = FitConfig(crop=16, batch_size=2, max_steps=3, check_every=100, **adversarial)
        model, _ = fit_autoencoder("ldm8", photos, photos[:1], config)
        return list(model.decoder.state_dict().values())

    without = decoder_after(adversarial_from=10**9)
    assert AUTOENCODERS["ldm8"].adversarial
    same = decoder_after(adversarial_from=0, adversarial_weight=0.0)  # the discriminator trains, adds nothing
    assert all(torch.equal(a, b) for a, b in zip(without, same))
    pushed = decoder_after(adversarial_from=0, adversarial_weight=0.1)
    assert not all(torch.equal(a, b) for a, b in zip(without, pushed))


def test_cli_reports_bad_reals_and_goes_on(real_root, tmp_path):
    truncated_jpeg(real_root / "0_real" / "dogs" / "broken.jpg")
    (real_root / "0_real" / "dogs" / "empty.jpg").write_bytes(b"")
    result = run_cli("synth", real_root, tmp_path / "out", "-a", "pixelshuffle", "--crop", "16", "--batch-size", "2",
                     "--max-steps", "2", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reals"] == 7 and len(report["errors"]) == 2
    assert "empty.jpg: empty file" in result.stderr
    assert "pixelshuffle: not sharp by its targets after 2 steps" in result.stderr  # and says where its fakes went
    assert report["archs"][0]["folder"] == "unsharp/pixelshuffle"
    assert len(list((tmp_path / "out" / "unsharp" / "pixelshuffle").rglob("*.*"))) == 7


def test_cli_passes_the_training_options_to_the_library(real_root, tmp_path, monkeypatch):
    import aidetect.synth.build as build

    seen = []
    monkeypatch.setattr(build, "synthesize", lambda real, out, config, progress: seen.append(config) or
                        build.SynthReport(str(real), str(out), 0, [], []))
    result = run_cli("synth", real_root, tmp_path / "out", "-a", "ldm8", "--adversarial-weight", "0.25",
                     "--batch-size", "8", "--max-steps", "40000", "--device", "cpu")
    assert result.exit_code == 0, result.output
    fit = seen[0].fit
    assert seen[0].archs == ("ldm8",) and (fit.adversarial_weight, fit.batch_size, fit.max_steps) == (0.25, 8, 40000)


def test_cli_usage_errors(tmp_path):
    result = run_cli("synth", tmp_path / "missing", tmp_path / "out")
    assert result.exit_code == 2 and "not a folder" in result.stderr
    result = run_cli("synth", tmp_path, tmp_path / "out", "-a", "vae9")
    assert result.exit_code == 2 and "unknown autoencoder 'vae9'" in result.stderr
    result = run_cli("synth", tmp_path, tmp_path / "out", "--device", "tpu9")
    assert result.exit_code == 2 and "invalid device 'tpu9'" in result.stderr
    result = run_cli("synth", tmp_path, tmp_path / "out", "--adversarial-weight", "-1")
    assert result.exit_code == 2 and "--adversarial-weight" in result.stderr
    listing = run_cli("synth", "--list")
    assert listing.exit_code == 0 and all(name in listing.stdout for name in AUTOENCODERS)
