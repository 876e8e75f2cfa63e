"""`aidetect adapt`: refit the heads on a user's few images, measured on a held-out share; bad inputs refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from aidetect.checkpoint import load_checkpoint

OPTIONS = ("--device", "cpu", "--workers", "0", "--no-progress", "--views", "2")


def _folder(path, count: int, noisy: bool, seed: int):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (96, 96, 3)) if noisy else np.full((96, 96, 3), rng.integers(0, 256, 3))
        Image.fromarray(pixels.astype(np.uint8)).save(path / f"{i}.png")
    return path


def test_adapt_refits_and_reports_before_and_after(tiny_checkpoint, tmp_path):
    reals, fakes = _folder(tmp_path / "reals", 10, False, 0), _folder(tmp_path / "fakes", 10, True, 1)
    result = run_cli("adapt", reals, fakes, "-o", tmp_path / "adapted.pt", "-w", tiny_checkpoint, "--json", *OPTIONS)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fitted"] == [7, 7] and report["held_out"] == [3, 3]
    assert "threshold rests on 3 held-out real images" in result.stderr and "aidetect calibrate" in result.stderr
    assert 0 <= report["ap_before"] <= 1 and 0 <= report["ap_after"] <= 1 and 0 <= report["threshold"] <= 1
    model, info = load_checkpoint(tmp_path / "adapted.pt")
    original, _ = load_checkpoint(tiny_checkpoint)
    assert info.threshold == report["threshold"] and info.metadata["adaptation"]["ap_after"] == report["ap_after"]
    state, before = model.state_dict(), original.state_dict()
    assert all((state[k] == before[k]).all() for k in before if k.startswith("backbone."))  # the backbone is kept
    assert not (state["embed_proj.weight"] == before["embed_proj.weight"]).all()  # the heads were refitted


def test_adapt_refuses_too_few_images_or_a_missing_class(tiny_checkpoint, tmp_path):
    reals, fakes = _folder(tmp_path / "reals", 10, False, 0), _folder(tmp_path / "fakes", 5, True, 1)
    result = run_cli("adapt", reals, fakes, "-o", tmp_path / "a.pt", "-w", tiny_checkpoint, *OPTIONS)
    assert result.exit_code == 2 and "5 readable generated images" in result.stderr and "at least 8" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("adapt", reals, tmp_path / "empty", "-o", tmp_path / "a.pt", "-w", tiny_checkpoint, *OPTIONS)
    assert result.exit_code == 2 and "0 readable generated images" in result.stderr
    result = run_cli("adapt", tmp_path / "nowhere", fakes, "-o", tmp_path / "a.pt", "-w", tiny_checkpoint, *OPTIONS)
    assert result.exit_code == 2 and "not a folder of real images" in result.stderr
    assert not (tmp_path / "a.pt").exists()


def test_adapt_leaves_out_unreadable_files_and_goes_on(tiny_checkpoint, tmp_path):
    reals, fakes = _folder(tmp_path / "reals", 9, False, 0), _folder(tmp_path / "fakes", 9, True, 1)
    (reals / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (fakes / "empty.png").write_bytes(b"")
    result = run_cli("adapt", reals, fakes, "-o", tmp_path / "a.pt", "-w", tiny_checkpoint, *OPTIONS)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("unreadable")]
    assert len(lines) == 2 and any("broken.jpg" in line for line in lines) and any("empty.png" in line for line in lines)
    assert "AP" in result.stdout and (tmp_path / "a.pt").exists()


@pytest.mark.parametrize("count, share, expected", [(8, 0.3, (6, 2)), (20, 0.3, (14, 6)), (10, 0.9, (2, 8))])
def test_split_holds_out_at_least_two_and_keeps_two(count, share, expected):
    from aidetect.training.adapt import split

    refit, held = split(count, share, np.random.default_rng(0))
    assert (len(refit), len(held)) == expected and sorted([*refit, *held]) == list(range(count))
