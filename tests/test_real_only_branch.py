"""The real-only branch inside a checkpoint: saved and loaded with the fused model, run by the engine beside
it, reported per image (JSON keys, CSV columns), combined with it only when the checkpoint says so."""

from __future__ import annotations

import csv
import json
import io
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from helpers import SCAN_OPTIONS, run_cli, scan_json, write_image
from PIL import Image
from test_forensic import TINY, reals, upsampled

from aidetect.checkpoint import CheckpointError, describe_checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from aidetect.combine import Combination, fit_combination
from aidetect.engine import Detector
from aidetect.forensic import RealPhotoModel, fit_real_model
from aidetect.images import load_image
from aidetect.training.adapt import adapt_real_only


@pytest.fixture(scope="module")
def real_photo():
    return fit_real_model(reals(30), TINY)


def with_branch(tiny_checkpoint, path, real_photo, **metadata):
    model, info = load_checkpoint(tiny_checkpoint)
    return save_checkpoint(path, model, {**info.metadata, **metadata}, real_photo)


@pytest.fixture(scope="module")
def branch_checkpoint(tiny_checkpoint, real_photo, tmp_path_factory):
    return with_branch(tiny_checkpoint, tmp_path_factory.mktemp("branch") / "branch.pt", real_photo)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("branch_photos")
    write_image(root / "a.png", 160, 120, seed=1)
    write_image(root / "b.jpg", 200, 90, seed=2, quality=80)
    write_image(root / "tiny.png", 12, 12, seed=3)  # below the branch's minimum side, not the fused model's
    write_image(root / "dot.png", 1, 1, seed=4)  # one pixel
    return root


def test_checkpoint_keeps_the_branch_and_scores_alike(branch_checkpoint, real_photo, photos):
    info, _ = read_checkpoint(branch_checkpoint)
    pixels = load_image(photos / "a.png")
    assert info.real_photo is not None and info.real_photo.score(pixels) == real_photo.score(pixels)
    assert info.combination == Combination()  # none fitted: the fused model alone decides
    card, _ = describe_checkpoint(branch_checkpoint)
    assert card["real_photo_model"]["fitted_images"] == real_photo.fitted_images


def test_a_broken_branch_state_is_a_checkpoint_error(branch_checkpoint, tmp_path):
    payload = torch.load(branch_checkpoint, weights_only=True)
    payload["real_photo_model"]["format"] = "something else"
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="real-photo model"):
        read_checkpoint(tmp_path / "broken.pt")


def test_every_prediction_reports_both_branches(branch_checkpoint, real_photo, photos):
    detector = Detector.load(branch_checkpoint, device="cpu", workers=0, batch_size=2)
    found = {p.path.split("/")[-1]: p for p in detector.predict(sorted(photos.iterdir()))}
    for name in ("a.png", "b.jpg"):
        p = found[name]
        assert p.branches.real_only == pytest.approx(real_photo.score(load_image(photos / name)), abs=1e-3)
        assert p.branches.real_only_unusual == (p.branches.real_only > real_photo.threshold)
        assert p.probability == pytest.approx(p.branches.fused, abs=1e-6)  # no combination: fused alone
    for name in ("tiny.png", "dot.png"):
        small = found[name]
        assert small.ok and small.probability is not None
        assert small.branches.real_only is None and "16" in small.branches.real_only_error
        assert small.branches.real_only_unusual is None
    off = Detector.load(branch_checkpoint, device="cpu", workers=0, real_only=False)
    assert [p.branches for p in off.predict([photos / "a.png"])] == [None]


def test_a_fitted_combination_sets_the_probability(tiny_checkpoint, real_photo, photos, tmp_path):
    combination = Combination(cnn_weight=0.5, real_only_weight=2.0, centre=real_photo.threshold, scale=10.0, bias=-0.3)
    path = with_branch(tiny_checkpoint, tmp_path / "combined.pt", real_photo, combination=combination.to_dict())
    p = Detector.load(path, device="cpu", workers=0).predict([photos / "a.png"])[0]
    logit = math.log(p.branches.fused / (1 - p.branches.fused))
    expected = combination.probability(logit, real_photo.score(load_image(photos / "a.png")))
    assert p.probability == pytest.approx(expected, abs=1e-4)
    assert abs(p.probability - p.branches.fused) > 1e-3


def test_scan_json_and_csv_carry_the_branches(branch_checkpoint, photos):
    code, doc, _ = scan_json(branch_checkpoint, photos)
    assert code == 0 and doc["checkpoint"]["real_only_branch"]["fitted_images"] > 0
    for record in doc["results"]:
        assert set(record["branches"]) == {"fused", "real_only", "real_only_threshold", "real_only_unusual",
                                           "real_only_error"}
    result = run_cli("scan", "-w", branch_checkpoint, "--format", "csv", *SCAN_OPTIONS, photos / "a.png")
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert float(row["real_only"]) > 0 and row["real_only_unusual"] in ("True", "False")
    table = run_cli("scan", "-w", branch_checkpoint, *SCAN_OPTIONS, photos / "a.png", photos / "dot.png").stdout
    assert "real-only branch" in table and table.count("usual") == 1  # a.png's word; the dot has none
    assert "real-only" not in run_cli("scan", "-w", branch_checkpoint, "--no-real-only", *SCAN_OPTIONS,
                                      photos / "a.png").stdout
    _, off, _ = scan_json(branch_checkpoint, "--no-real-only", photos / "a.png")
    assert off["results"][0]["branches"] is None and off["checkpoint"]["real_only_branch"] is None


def test_fit_combination_weighs_the_branch_that_separates():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    cnn = rng.normal(0, 1, 400)  # no information
    real_only = 100 + 10 * labels + rng.normal(0, 3, 400)  # separates the classes
    fitted = fit_combination(cnn, real_only, labels)
    assert fitted.real_only_weight > 1.0 and abs(fitted.cnn_weight) < 0.3
    assert fitted.centre == pytest.approx(np.median(real_only[labels == 0]))
    with pytest.raises(ValueError, match="real and generated"):
        fit_combination(cnn[:200], real_only[:200], labels[:200])


def upsampled_photos(folder, count, start=700):
    """Photos from a 'camera' unlike the fitting reals: enlarged 2x by nearest neighbour."""
    return save_all(folder, upsampled(count, start))


def save_all(folder, images):
    folder.mkdir(parents=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    return folder


def test_refit_on_a_new_camera_stops_flagging_it_and_keeps_the_old_reals(real_photo, tmp_path):
    camera = upsampled_photos(tmp_path / "camera", 24)
    photos = sorted(camera.iterdir())
    unseen = [load_image(p) for p in photos[-6:]]  # not refitted on
    refitted = real_photo.refit(photos[:18])
    assert refitted.bank is real_photo.bank
    assert (refitted.fitted_images, refitted.held_out_images) == (24 + 15, 6 + 3)  # the old photos count still
    before = np.mean([real_photo.score(x) > real_photo.threshold for x in unseen])
    after = np.mean([refitted.score(x) > refitted.threshold for x in unseen])
    assert before >= 0.5 and after < before
    old_reals = reals(20, start=300)  # what it knew is kept whole: no other photo is flagged more than before
    old_scores = np.array([real_photo.score(x) for x in old_reals])
    new_scores = np.array([refitted.score(x) for x in old_reals])
    assert np.all(new_scores <= old_scores - np.log(0.75) + 1e-9)
    assert np.sum(new_scores > refitted.threshold) <= np.sum(old_scores > real_photo.threshold)
    again = RealPhotoModel.from_state(refitted.to_state())  # a pooled density survives the checkpoint
    assert again.score(unseen[0]) == refitted.score(unseen[0])
    with pytest.raises(ValueError, match="weight"):
        real_photo.refit(photos[:18], weight=1.0)


def test_adapt_with_real_photos_alone_refits_only_the_branch(branch_checkpoint, tmp_path):
    camera = upsampled_photos(tmp_path / "camera", 20)
    (camera / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # one unreadable file
    result = run_cli("adapt", camera, "-w", branch_checkpoint, "-o", tmp_path / "adapted.pt", "--json", "--no-progress")
    assert result.exit_code == 1, result.stderr  # written, with the unreadable file named on one line
    assert sum("zz_broken.png" in line for line in result.stderr.splitlines()) == 1
    report = json.loads(result.stdout)
    assert report["fitted"] == 16 and report["held_out"] == 4 and report["flagged_before"] > report["flagged_after"]
    before, before_state = read_checkpoint(branch_checkpoint)
    after, after_state = read_checkpoint(tmp_path / "adapted.pt")
    assert all(torch.equal(before_state[k], after_state[k]) for k in before_state)  # the fused model is untouched
    assert after.real_photo.threshold == report["threshold_after"] >= before.real_photo.threshold
    assert len(after.real_photo.mixture.parts) == 2  # the old density kept, the camera's added
    assert after.metadata["real_only_adaptation"]["source"] == str(branch_checkpoint)


def test_adapt_gives_a_checkpoint_without_the_branch_a_new_one(tiny_checkpoint, tmp_path):
    folder = save_all(tmp_path / "reals", reals(20, start=900))
    report = adapt_real_only(folder, tmp_path / "new.pt", tiny_checkpoint, config=TINY)
    assert report.flagged_before is None and report.threshold_before is None
    assert read_checkpoint(tmp_path / "new.pt")[0].real_photo.fitted_images == report.fitted == 16


def test_explain_draws_the_branch_map_beside_the_explanation(branch_checkpoint, tiny_checkpoint, real_photo, photos,
                                                             tmp_path):
    from aidetect.forensic import tile_boxes

    result = run_cli("explain", photos / "a.png", photos / "tiny.png", "-w", branch_checkpoint, "-o", tmp_path / "x",
                     *SCAN_OPTIONS)
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "x" / "a.explain.json").read_text())
    found = record["real_only_map"]
    expected = tile_boxes(120, 160, real_photo.config).reshape(-1, 4).tolist()
    assert found["boxes"] == expected and len(found["scores"]) == len(expected)
    assert found["unusual_tiles"] == sum(s > found["threshold"] for s in found["scores"])
    picture = Image.open(tmp_path / "x" / "a.real_only.png")
    assert picture.width > 160 and picture.height > 120
    assert not (tmp_path / "x" / "tiny.real_only.png").exists()  # too small for the branch: explained without it
    assert (tmp_path / "x" / "tiny.explain.png").exists()
    run_cli("explain", photos / "a.png", "-w", tiny_checkpoint, "-o", tmp_path / "y", *SCAN_OPTIONS)
    assert not (tmp_path / "y" / "a.real_only.png").exists() and (tmp_path / "y" / "a.explain.png").exists()


def test_eval_ranks_by_the_branch_asked_for(branch_checkpoint, tiny_checkpoint, real_photo, tmp_path):
    root = tmp_path / "sets" / "s"
    save_all(root / "0_real", reals(5, start=400))
    save_all(root / "1_fake", upsampled(5, start=450))
    result = run_cli("eval", tmp_path / "sets", "-w", branch_checkpoint, "--branch", "real-only", "--json",
                     *SCAN_OPTIONS)
    assert result.exit_code == 0, result.stderr
    pooled = json.loads(result.stdout)["results"][0]["pooled"]
    labels = [0] * 5 + [1] * 5
    scores = [real_photo.score(load_image(p)) for p in sorted((root / "0_real").iterdir()) + sorted((root / "1_fake").iterdir())]
    assert pooled["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
    assert json.loads(result.stdout)["results"][0]["threshold"] == pytest.approx(real_photo.threshold)
    refused = run_cli("eval", tmp_path / "sets", "-w", tiny_checkpoint, "--branch", "real-only", *SCAN_OPTIONS)
    assert refused.exit_code == 2 and "no real-only branch" in refused.stderr
    resized = run_cli("eval", tmp_path / "sets", "-w", branch_checkpoint, "--branch", "real-only", "--resize", "0.5",
                      "--csv", *SCAN_OPTIONS)
    assert resized.exit_code == 0 and ",0.5," in resized.stdout.splitlines()[1]


def test_the_report_gives_the_branch_word_under_the_verdict(branch_checkpoint, photos, tmp_path):
    result = run_cli("scan", photos / "a.png", photos / "dot.png", "-w", branch_checkpoint, "--report", tmp_path / "r",
                     *SCAN_OPTIONS)
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "r" / "index.html").read_text()
    assert page.count("real-only: ") == 1 and "not in the verdict" in page  # a.png; the dot is too small for it


def test_calibrate_combines_the_branches_on_a_fold_and_calibrates_the_result(branch_checkpoint, tiny_checkpoint,
                                                                            tmp_path):
    fold = tmp_path / "fold"
    save_all(fold / "0_real", reals(12, start=600))
    save_all(fold / "1_fake", upsampled(12, start=650))  # the trace the branch sees
    own = save_all(tmp_path / "mine", reals(8, start=700))
    fakes = save_all(tmp_path / "gen", upsampled(8, start=750))
    result = run_cli("calibrate", own, "--fake", fakes, "--combine-on", fold, "-w", branch_checkpoint,
                     "-o", tmp_path / "combined.pt", "--no-progress", "--device", "cpu", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    assert "combination fitted on" in result.stderr
    info, _ = read_checkpoint(tmp_path / "combined.pt")
    assert info.combination.real_only_weight > 0 and info.metadata["combination"]["fitted_on"] == str(fold)
    assert info.logit_bias == read_checkpoint(branch_checkpoint)[0].logit_bias  # the fitted shift went in the bias
    detector = Detector.load(tmp_path / "combined.pt", device="cpu", workers=0)
    generated = [p.probability for p in detector.predict(sorted(fakes.iterdir()))]
    real = [p.probability for p in detector.predict(sorted(own.iterdir()))]
    assert min(generated) > max(real)  # the branch's trace now decides
    assert np.mean([g >= detector.threshold for g in generated]) >= 0.5
    refused = run_cli("calibrate", own, "--combine-on", fold, "-w", tiny_checkpoint, "-o", tmp_path / "x.pt",
                      "--no-progress", "--device", "cpu", "--workers", "0")
    assert refused.exit_code != 0 and "no real-only branch" in refused.stderr


def test_bad_folders_for_the_branch_get_one_clear_line(branch_checkpoint, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "x.jpg").write_bytes(b"not an image")
    (junk / "y.png").write_bytes(b"")
    write_image(junk / "small.png", 8, 8)
    result = run_cli("adapt", junk, "-w", branch_checkpoint, "-o", tmp_path / "a.pt", "--no-progress")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert all(name in result.stderr for name in ("x.jpg", "y.png", "small.png"))
    assert not (tmp_path / "a.pt").exists()
    missing = run_cli("calibrate", junk, "--combine-on", tmp_path / "nothing", "-w", branch_checkpoint,
                      "-o", tmp_path / "c.pt", "--no-progress")
    assert missing.exit_code == 2 and "not a folder" in missing.stderr and "Traceback" not in missing.stderr
