"""Evaluation end to end on tiny synthetic sets: perturbations, scores, reports, sweep files, CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from helpers import noise_pixels, run_cli, write_image
from PIL import Image

from aidetect.datasets import find_sets
from aidetect.engine import Detector
from aidetect.evaluation.evaluate import evaluate, predict_files, sweep_perturbations
from aidetect.evaluation.perturb import Perturbation, gaussian_blur, jpeg_roundtrip

OPTIONS = ("--device", "cpu", "--workers", "0", "--no-progress")


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    """Two sets in the CNNDetection layout (one with a nested folder) and one unreadable file."""
    root = tmp_path_factory.mktemp("testsets")
    seed = 0
    for name, real, fake in (("gan", 2, 3), ("diffusion", 3, 2)):
        for label, count in (("0_real", real), ("1_fake", fake)):
            for i in range(count):
                seed += 1
                folder = root / name / label / ("nested" if i == 0 else "")
                folder.mkdir(parents=True, exist_ok=True)
                write_image(folder / f"{i}.png", 64 + 16 * i, 48 + 8 * seed, seed=seed)
    (root / "gan" / "0_real" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def detector(tiny_checkpoint):
    return Detector.load(tiny_checkpoint, device="cpu", batch_size=3)


def test_perturbations_change_pixels_as_asked():
    pixels = noise_pixels(64, 48, seed=5)
    assert Perturbation()(pixels) is pixels and Perturbation(blur_sigma=0)(pixels) is pixels
    errors = [np.abs(jpeg_roundtrip(pixels, q).astype(int) - pixels).mean() for q in (100, 75, 30)]
    assert 0 < errors[0] < errors[1] < errors[2]  # q100 still re-encodes; lower quality loses more
    spread = [gaussian_blur(pixels, s).std() for s in (1.0, 2.0, 3.0)]
    assert pixels.std() > spread[0] > spread[1] > spread[2]
    both = Perturbation(jpeg_quality=50, blur_sigma=1.0)
    assert np.array_equal(both(pixels), jpeg_roundtrip(gaussian_blur(pixels, 1.0), 50))
    assert both.label == "blur 1, jpeg 50" and Perturbation().label == "none"
    with pytest.raises(ValueError, match="jpeg 90 failed"):
        Perturbation(jpeg_quality=90)(np.zeros((1, 70000, 3), np.uint8))  # beyond JPEG's 65500 pixels
    with pytest.raises(ValueError):
        Perturbation(jpeg_quality=0)
    with pytest.raises(ValueError):
        Perturbation(blur_sigma=-1)
    halved = Perturbation(scale=0.5, jpeg_quality=90)
    assert halved(pixels).shape == (24, 32, 3) and halved.label == "resize 0.5, jpeg 90"
    assert Perturbation(scale=2)(pixels).shape == (96, 128, 3)
    with pytest.raises(ValueError, match="resize"):
        Perturbation(scale=0)
    assert [p.label for p in sweep_perturbations()] == [
        "jpeg 100", "jpeg 90", "jpeg 75", "jpeg 50", "jpeg 30", "none", "blur 1", "blur 2", "blur 3"]


def test_scores_match_the_engine_clean_and_perturbed(test_root, detector):
    paths = [path for s in find_sets(test_root) for path, _ in s.items]
    clean, jpeg = predict_files(detector, paths, [Perturbation(), Perturbation(jpeg_quality=40)])
    engine = detector.predict(paths)
    assert [p.path for p in clean] == [p.path for p in engine] == [str(p) for p in paths]
    # batches are composed differently (the unreadable file), so allow float noise
    assert [p.probability for p in clean] == pytest.approx([p.probability for p in engine], abs=1e-5)
    assert [p.error is None for p in clean].count(False) == 1
    by_hand = [Image.fromarray(jpeg_roundtrip(np.asarray(Image.open(p).convert("RGB")), 40))
               for p in paths if p.suffix == ".png"]
    assert [p.probability for p in jpeg if p.ok] == pytest.approx([p.probability for p in detector.predict(by_hand)],
                                                                  abs=1e-5)
    assert np.abs(np.subtract([p.probability for p in jpeg if p.ok], [p.probability for p in clean if p.ok])).max() > 1e-4


def test_report_counts_and_unreadable_files(test_root, detector):
    sets = find_sets(test_root)
    [result] = evaluate(detector, sets, families={"gan": "gan"})
    report = result.report
    assert [(m.name, m.n_real, m.n_fake) for m in report.sets] == [("diffusion", 3, 2), ("gan", 2, 3)]
    assert [(m.name, m.n_sets) for m in report.families] == [("gan", 1), ("other", 1)]
    assert (report.pooled.n_real, report.pooled.n_fake) == (5, 5)
    assert report.mean.ap == pytest.approx(np.mean([m.ap for m in report.sets]))
    assert [path.endswith("broken.jpg") for path, _ in result.errors] == [True]
    assert report.threshold == detector.threshold


def test_patch_strategy_swap_keeps_the_weights(tiny_checkpoint, detector):
    swapped = Detector.load(tiny_checkpoint, patches="rsz448", device="cpu")
    assert swapped.model.config.patches == "rsz448" and swapped.info.config.patches == "rsz448"
    assert detector.model.config.patches == "psm"
    reference = detector.model.state_dict()
    assert all(np.array_equal(v.numpy(), reference[k].numpy()) for k, v in swapped.model.state_dict().items())


def test_cli_eval_json_and_csv(test_root, tiny_checkpoint, tmp_path):
    families = tmp_path / "families.json"
    families.write_text('{"gan": "gan", "diffusion": "diffusion"}')
    result = run_cli("eval", test_root, "-w", tiny_checkpoint, "--json", "--blur", "1", "--families", families, *OPTIONS)
    assert result.exit_code == 1, result.stderr  # one unreadable file, named on one line however long its path
    assert f"unreadable, left out: {test_root / 'gan' / '0_real' / 'broken.jpg'}: " in result.stderr.splitlines()[0]
    doc = json.loads(result.stdout)
    assert doc["checkpoint"]["patches"] == "psm"
    [run] = doc["results"]
    assert run["perturbation"] == {"jpeg_quality": None, "blur_sigma": 1.0, "scale": 1.0}
    assert [s["name"] for s in run["sets"]] == ["diffusion", "gan"]
    assert [f["name"] for f in run["families"]] == ["diffusion", "gan"]
    assert run["pooled"]["n_real"] + run["pooled"]["n_fake"] == 10

    result = run_cli("eval", test_root, "-w", tiny_checkpoint, "--csv", "--jpeg", "60", "--patches", "random", *OPTIONS)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["row"], r["name"]) for r in rows] == [("set", "diffusion"), ("set", "gan"), ("mean", "mean"),
                                                      ("pooled", "all images")]
    assert {r["jpeg_quality"] for r in rows} == {"60"}

    result = run_cli("eval", test_root, "-w", tiny_checkpoint, *OPTIONS)
    assert "mean of 2 sets" in result.stdout and "all images" in result.stdout


def test_cli_sweep_writes_tables_and_plots(test_root, tiny_checkpoint, tmp_path):
    out = tmp_path / "sweep"
    result = run_cli("eval", test_root, "-w", tiny_checkpoint, "--sweep", "--out", out,
                     "--device", "cpu", "--workers", "1", "--no-progress")
    assert result.exit_code == 1, result.stderr
    assert "jpeg 30" in result.stdout and "blur 3" in result.stdout
    doc = json.loads((out / "sweep.json").read_text())
    assert [(r["perturbation"]["jpeg_quality"], r["perturbation"]["blur_sigma"]) for r in doc["results"]] == [
        (100, 0.0), (90, 0.0), (75, 0.0), (50, 0.0), (30, 0.0), (None, 0.0), (None, 1.0), (None, 2.0), (None, 3.0)]
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 9 * 4
    for name in ("ap_vs_jpeg.png", "ap_vs_blur.png"):
        with Image.open(out / name) as plot:
            assert plot.format == "PNG" and plot.width > 300


@pytest.mark.parametrize("args, message", [
    (("--sweep",), "--sweep and --out go together"),
    (("--sweep", "--out", "x", "--jpeg", "50"), "drop --jpeg"),
    (("--json", "--csv"), "choose one"),
])
def test_cli_eval_usage_errors(test_root, tiny_checkpoint, args, message):
    result = run_cli("eval", test_root, "-w", tiny_checkpoint, *args, *OPTIONS)
    assert result.exit_code == 2 and message in result.stderr


def test_cli_eval_folder_without_labels(tmp_path, tiny_checkpoint):
    (tmp_path / "photos").mkdir()
    write_image(tmp_path / "photos" / "a.png")
    result = run_cli("eval", tmp_path, "-w", tiny_checkpoint, *OPTIONS)
    assert result.exit_code == 2 and "0_real or 1_fake" in result.stderr


def test_cli_eval_by_generator_pairs_each_generator_with_every_real(test_root, tiny_checkpoint):
    """test_root as a held-out folder: a generator is the folder right below 1_fake ('nested'), else the one
    above it; every generator is paired with all 5 readable reals."""
    result = run_cli("eval", test_root, "-w", tiny_checkpoint, "--json", "--by-generator", *OPTIONS)
    assert result.exit_code == 1, result.stderr  # the broken real
    [run] = json.loads(result.stdout)["results"]
    assert [(s["name"], s["n_real"], s["n_fake"]) for s in run["sets"]] == [("diffusion", 5, 1), ("gan", 5, 2),
                                                                             ("nested", 5, 2)]
    assert len(run["errors"]) == 1 and "images x 1 perturbation" in result.stderr
    assert "3 sets, 11 images" in result.stderr  # 6 reals (one broken) + 5 fakes, each scored once


def test_generator_sets_score_their_shared_reals_once(test_root, detector, monkeypatch):
    """Every generator set holds all the reals: they are decoded and scored once, not once per set."""
    from aidetect.datasets import generator_sets

    seen = []
    inner = detector.iter_predict
    monkeypatch.setattr(detector, "iter_predict", lambda jobs, prepare=None: (seen.extend(jobs), inner(jobs, prepare))[1])
    sets = generator_sets(test_root)
    [result] = evaluate(detector, sets, balanced=True)
    assert len(seen) == len(set(seen)) == 11
    assert [(s.name, s.n_real, s.n_fake) for s in result.report.sets] == [("diffusion", 5, 1), ("gan", 5, 2),
                                                                            ("nested", 5, 2)]
    assert len(result.errors) == 1  # the broken real, once


def test_eval_reports_ap_intervals_and_compares_two_checkpoints(test_root, tiny_checkpoint, tmp_path):
    """Every AP row has its bootstrap interval; --against scores a second checkpoint on the same images
    and gives the paired interval of each difference (a checkpoint against itself: exactly 0)."""
    doc = json.loads(run_cli("eval", test_root, "-w", tiny_checkpoint, "--json", *OPTIONS).stdout)
    intervals = doc["results"][0]["ap_intervals"]
    assert set(intervals) == {"gan", "diffusion", "mean", "all images"}
    for row in doc["results"][0]["sets"]:
        assert intervals[row["name"]]["low"] <= row["ap"] <= intervals[row["name"]]["high"]
    table = run_cli("eval", test_root, "-w", tiny_checkpoint, *OPTIONS)
    assert "AP 90% interval" in table.stdout
    result = run_cli("eval", test_root, "-w", tiny_checkpoint, "--against", tiny_checkpoint, "--json", *OPTIONS)
    assert result.exit_code == 1  # the broken file, in both evaluations
    compared = json.loads(result.stdout)
    assert compared["candidate"]["mean"] == compared["baseline"]["mean"]
    assert all(v["low"] == v["high"] == 0.0 for v in compared["difference"].values())
    assert run_cli("eval", test_root, "-w", tiny_checkpoint, "--against", tiny_checkpoint, "--sweep", "--out",
                   tmp_path, *OPTIONS).exit_code == 2
