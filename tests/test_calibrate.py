"""Calibration: the threshold meets the false-positive target, the bias centres the classes, and the
written checkpoint makes the engine behave as the calibration record says."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli, write_image

from aidetect.checkpoint import read_checkpoint
from aidetect.engine import Detector
from aidetect.evaluation.calibrate import calibrate_checkpoint, calibrate_scores, fit_logit_bias, lower_threshold
from aidetect.evaluation.metrics import fpr_threshold


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def test_threshold_by_hand():
    reals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert fpr_threshold(reals, 0.2) == pytest.approx(0.85)  # flags 0.9 and 0.95, halfway to 0.8
    assert fpr_threshold(reals, 0.25) == pytest.approx(0.85)  # 2.5 reals allowed: still 2
    assert fpr_threshold(reals, 0.2, fake_scores=[0.82, 0.99]) == pytest.approx(0.81)  # keeps the fake at 0.82
    assert fpr_threshold(reals, 0.0) == pytest.approx(0.950001)  # just above every real
    assert fpr_threshold(reals, 0.0, fake_scores=[0.97]) == pytest.approx(0.96)
    assert fpr_threshold(reals, 1.0) == 0.0
    assert fpr_threshold([0.3, 0.7, 0.7, 0.7], 0.5) == pytest.approx(0.700001)  # a tie cannot be split: flag none
    with pytest.raises(ValueError):
        fpr_threshold([], 0.1)
    with pytest.raises(ValueError):
        fpr_threshold(reals, 1.5)


def test_fpr_target_met_on_synthetic_probabilities():
    rng = np.random.default_rng(0)
    reals, fakes = _sigmoid(rng.normal(-1, 1.5, 2000)), _sigmoid(rng.normal(2, 1.5, 2000))
    for target in (0.01, 0.05, 0.2):
        calibration = calibrate_scores(reals, fakes, target)
        assert target - 1 / len(reals) < calibration.fpr <= target
        fresh = _sigmoid(rng.normal(-1, 1.5, 20000) + calibration.logit_bias)
        assert (fresh >= calibration.threshold).mean() == pytest.approx(target, abs=0.01)
    assert calibration.tpr > 0.8 and (calibration.n_real, calibration.n_fake) == (2000, 2000)


def test_bias_centres_the_classes():
    # a detector that calls everything fake: logits symmetric about 4
    assert fit_logit_bias(np.array([2.0, 3, 4]), np.array([4.0, 5, 6])) == pytest.approx(-4, abs=1e-9)
    # the class ratio does not move it
    assert fit_logit_bias(np.array([2.0, 3, 4] * 10), np.array([4.0, 5, 6])) == pytest.approx(-4, abs=1e-9)
    calibration = calibrate_scores(_sigmoid([2, 3, 4]), _sigmoid([4, 5, 6]), 0.0, previous_bias=0.5)
    assert calibration.logit_bias == pytest.approx(0.5 - 4, abs=1e-4)
    assert calibration.fpr == 0.0 and calibration.tpr == pytest.approx(2 / 3)  # only the fake tied with a real is lost
    reals_only = calibrate_scores(_sigmoid([2, 3, 4]), [], 0.0, previous_bias=0.5)
    assert reals_only.logit_bias == 0.5 and reals_only.tpr is None


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    for i in range(10):
        write_image(root / "real" / f"{i}.png", 48 + 8 * i, 64, seed=i)
    for i in range(6):
        write_image(root / "fake" / f"{i}.jpg", 96, 40 + 8 * i, seed=100 + i)
    return root


def test_calibrated_checkpoint_drives_the_engine(folders, tiny_checkpoint, tmp_path):
    out = tmp_path / "calibrated.pt"
    calibration, failed = calibrate_checkpoint(folders / "real", out, folders / "fake", target_fpr=0.2,
                                               weights=tiny_checkpoint, device="cpu", batch_size=4)
    assert failed == [] and (calibration.n_real, calibration.n_fake) == (10, 6)
    info, _ = read_checkpoint(out)
    assert info.threshold == calibration.threshold and info.logit_bias == calibration.logit_bias
    record = info.metadata["calibration"]
    assert record["target_fpr"] == 0.2 and record["source"] == str(tiny_checkpoint) and record["date"]
    assert info.metadata["name"] == "tiny-test"  # the rest of the card is kept
    detector = Detector.load(out, device="cpu")
    reals = detector.predict(sorted((folders / "real").iterdir()))
    fakes = detector.predict(sorted((folders / "fake").iterdir()))
    flagged = [p.flagged for p in reals]
    assert sum(flagged) / len(reals) == calibration.fpr <= 0.2
    assert sum(p.flagged for p in fakes) / len(fakes) == calibration.tpr


def test_cli_calibrate(folders, tiny_checkpoint, tmp_path):
    out = tmp_path / "cal.pt"
    result = run_cli("calibrate", folders / "real", "--target-fpr", "0.1", "-w", tiny_checkpoint, "--out", out,
                     "--device", "cpu", "--workers", "0", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "flags 0.100 of the reals; target 0.1 on every source" in result.stdout
    info, _ = read_checkpoint(out)
    assert info.metadata["calibration"]["n_fake"] == 0 and info.logit_bias == 0.0
    result = run_cli("calibrate", tmp_path / "missing", "-w", tiny_checkpoint, "--out", tmp_path / "x.pt",
                     "--device", "cpu", "--no-progress")
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_threshold_holds_on_every_real_source_and_the_lower_one_misses_few_fakes():
    """A source of reals the model finds hard (scored high) sets the threshold, not the pooled reals; the
    lower threshold lets at most the target share of fakes fall under it; the band holds the rest."""
    rng = np.random.default_rng(1)
    easy, hard = _sigmoid(rng.normal(-2, 1, 400)), _sigmoid(rng.normal(0.5, 1, 100))
    fakes = _sigmoid(rng.normal(1.5, 1, 400))
    reals, sources = np.r_[easy, hard], ["easy"] * 400 + ["hard"] * 100
    pooled = calibrate_scores(reals, [], 0.05)
    per_source = calibrate_scores(reals, fakes, 0.05, real_sources=sources, target_miss=0.1)
    assert per_source.real_accuracy["hard"] >= 0.95 and per_source.real_accuracy["easy"] >= 0.95
    assert (hard >= pooled.threshold).mean() > 0.1  # pooled, the hard source's reals were flagged far more
    fake_scores = _sigmoid(np.log(fakes / (1 - fakes)) + per_source.logit_bias - 0.0)
    assert per_source.lower_threshold <= per_source.threshold
    assert per_source.missed <= 0.1 and per_source.missed == pytest.approx((fake_scores < per_source.lower_threshold).mean())
    assert 0 < per_source.uncertain["fake"] < 1
    with pytest.raises(ValueError):
        lower_threshold([], 0.05)
    assert lower_threshold([0.1, 0.2, 0.3, 0.4], 0.25) == 0.2  # one fake below it: the allowed share
    assert lower_threshold([0.1, 0.2, 0.3, 0.4], 0.0) == 0.1


def test_a_labelled_root_calibrates_both_thresholds_and_scan_gives_three_verdicts(tiny_checkpoint, tmp_path):
    """calibrate on a CNNDetection-layout root (a corpus's val_out): sources from its folders, fakes from
    its 1_fake; the checkpoint it writes makes scan say generated, uncertain or no sign of generation."""
    root = tmp_path / "val_out"
    for source, count in (("cams", 8), ("faces", 6)):
        for i in range(count):
            (root / source / "0_real").mkdir(parents=True, exist_ok=True)
            write_image(root / source / "0_real" / f"{i}.png", 40 + 6 * i, 48, seed=10 * count + i)
    for i in range(10):
        (root / "gen" / "1_fake" / "g").mkdir(parents=True, exist_ok=True)
        write_image(root / "gen" / "1_fake" / "g" / f"{i}.png", 64, 36 + 4 * i, seed=500 + i)
    out = tmp_path / "three.pt"
    result = run_cli("calibrate", root, "-w", tiny_checkpoint, "--out", out, "--target-fpr", "0.2", "--target-miss",
                     "0.2", "--device", "cpu", "--workers", "0", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "real accuracy: cams" in result.stdout and "real accuracy: faces" in result.stdout
    info, _ = read_checkpoint(out)
    record = info.metadata["calibration"]
    assert (record["n_real"], record["n_fake"]) == (14, 10)
    assert info.lower_threshold == record["lower_threshold"] <= info.threshold == record["threshold"]
    assert min(record["real_accuracy"].values()) >= 0.8
    detector = Detector.load(out, device="cpu", workers=0)
    for p in detector.predict(sorted(root.rglob("*.png"))):
        expected = ("generated" if p.probability >= info.threshold else
                    "no sign of generation" if p.probability < info.lower_threshold else "uncertain")
        assert p.label == expected
    assert run_cli("calibrate", root, "--fake", root, "-w", tiny_checkpoint, "--out", out,
                   "--device", "cpu", "--no-progress").exit_code == 2  # a labelled root brings its own fakes
