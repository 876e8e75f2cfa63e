"""`aidetect explain`: geometry against a model whose activation is forced to one known cell, the
drawn picture and its JSON, name collisions, bad inputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SCAN_OPTIONS, noise_pixels, run_cli, write_image
from PIL import Image
from torch import nn

from aidetect.checkpoint import CheckpointInfo
from aidetect.config import ModelConfig
from aidetect.engine import Detector
from aidetect.explain import (HEAT_ALPHA, PATCH_COLOURS, colourise, display_scale, explain_inputs, heat_values, layout,
                              output_names, render)
from aidetect.inputs import InputItem
from aidetect.model import FusedDetector

HOT = (2, 4)  # row, column of the hot cell on the 7 x 7 feature map
WIDTH, HEIGHT = 600, 400  # landscape: the global view sees the central 400 x 400 square, x from 100


class HotSpot(nn.Module):
    """A backbone whose feature map is zero except a peak at HOT with a ring of half its value, so the
    3x3 window centred on HOT wins the PSM outright. It has one level, the final map."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        fm = x.new_zeros(len(x), 16, 7, 7)
        fm[:, :, HOT[0] - 1:HOT[0] + 2, HOT[1] - 1:HOT[1] + 2] = 0.5
        fm[:, :, HOT[0], HOT[1]] = 1.0
        return [fm]


@pytest.fixture(scope="module")
def hot_detector() -> Detector:
    torch.manual_seed(0)
    model = FusedDetector(ModelConfig(backbone="tiny", features="last")).eval()
    model.backbone = HotSpot()
    return Detector(model, CheckpointInfo(Path("hot.pt"), model.config, {"name": "hot-spot"}), device="cpu", workers=0)


@pytest.fixture(scope="module")
def hot_case(hot_detector, tmp_path_factory):
    """The noise image, its prediction and evidence, and the rendered explanation."""
    path = tmp_path_factory.mktemp("hot") / "hot.png"
    pixels = noise_pixels(WIDTH, HEIGHT, seed=3)
    Image.fromarray(pixels).save(path)
    prediction, evidence = next(hot_detector.explain([path]))
    return pixels, prediction, evidence, render(pixels, prediction, evidence, "hot-spot")


def hot_spot_in_image() -> tuple[float, float]:
    """Centre of the hot cell's region: the cell's share of the central square that the global view saw."""
    side, left = HEIGHT, (WIDTH - HEIGHT) // 2
    return left + side * (HOT[1] + 0.5) / 7, side * (HOT[0] + 0.5) / 7


def test_first_box_is_centred_on_the_hot_spot(hot_case):
    _, prediction, evidence, _ = hot_case
    assert evidence.view_box == (100, 0, 500, 400)
    assert np.unravel_index(np.argmax(evidence.activation), evidence.activation.shape) == HOT
    box = prediction.boxes[0]
    x, y = hot_spot_in_image()
    assert (box.x1 - box.x0, box.y1 - box.y0, box.size) == (224, 224, 224)
    assert abs((box.x0 + box.x1) / 2 - x) <= 1 and abs((box.y0 + box.y1) / 2 - y) <= 1


def test_hottest_heat_pixel_lies_in_the_first_box(hot_case):
    pixels, prediction, evidence, _ = hot_case
    geometry = layout(WIDTH, HEIGHT, [(b.x0, b.y0, b.x1, b.y1) for b in prediction.boxes], evidence.view_box)
    heat_w, heat_h = geometry.heat[2] - geometry.heat[0], geometry.heat[3] - geometry.heat[1]
    heat = heat_values(evidence.activation, (heat_w, heat_h))
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    hot_x, hot_y = geometry.heat[0] + col, geometry.heat[1] + row
    x0, y0, x1, y1 = geometry.boxes[0]
    assert x0 <= hot_x < x1 and y0 <= hot_y < y1
    centre = geometry.rect(*hot_spot_in_image(), *hot_spot_in_image())[:2]
    assert abs(hot_x - centre[0]) <= 2 and abs(hot_y - centre[1]) <= 2


def test_picture_draws_heat_boxes_and_crops_where_the_layout_says(hot_case):
    _, prediction, evidence, explanation = hot_case
    picture, display, record = np.asarray(explanation.picture), np.asarray(explanation.display), explanation.record
    geometry_image = record["display"]["image"]
    assert list(picture.shape[1::-1]) == record["display"]["canvas"]
    assert record["display"]["scale"] == display_scale(WIDTH, HEIGHT) == 1.0
    # over the hot spot: nearly the hottest colour at nearly its strongest opacity, blended as the heat map says
    hx, hy = (round(v) for v in hot_spot_in_image())
    heat = heat_values(evidence.activation, (400, 400))[hy, hx - 100]
    assert heat > 0.95
    alpha = HEAT_ALPHA[0] + (HEAT_ALPHA[1] - HEAT_ALPHA[0]) * heat
    expected = display[hy, hx] * (1 - alpha) + colourise(np.array(heat)) * alpha
    assert np.abs(picture[geometry_image[1] + hy, geometry_image[0] + hx] - expected).max() <= 1
    # outside the view box (x < 100) the image is shown as it is
    assert np.array_equal(picture[geometry_image[1] + 200, geometry_image[0] + 50], display[200, 50])
    # the first box is drawn in its colour on its left edge, halfway down
    x0, y0, x1, y1 = record["patches"][0]["display_box"]
    assert tuple(picture[(y0 + y1) // 2, x0 + 2]) == PATCH_COLOURS[0]
    # the strip's first tile is crop 0, scaled to the tile
    tx0, ty0, tx1, ty1 = record["patches"][0]["crop_tile"]
    tile = Image.fromarray(evidence.crops[0]).resize((tx1 - tx0, ty1 - ty0), Image.Resampling.LANCZOS)
    assert np.array_equal(picture[ty0:ty1, tx0:tx1], np.asarray(tile))


def test_crops_are_the_boxes_as_the_local_branch_saw_them(hot_case):
    pixels, prediction, evidence, _ = hot_case
    assert evidence.crops.shape == (6, 224, 224, 3)
    for box, crop in zip(prediction.boxes, evidence.crops):
        region = pixels[box.y0:box.y1, box.x0:box.x1]
        if box.size == 224:
            assert np.array_equal(crop, region)
        else:  # 112 boxes are brought to 224 as the published code does
            tensor = torch.from_numpy(region).permute(2, 0, 1)[None].float()
            resized = F.interpolate(tensor, size=(224, 224), mode="bilinear", align_corners=True)[0]
            assert np.abs(resized.permute(1, 2, 0).round().numpy() - crop).max() <= 1


def test_layout_of_a_large_image_shares_one_scaled_frame():
    geometry = layout(4000, 3000, [(0, 0, 224, 224), (3888, 2888, 4000, 3000)], (500, 0, 3500, 3000))
    assert geometry.scale == 1024 / 4000
    x0, y0, x1, y1 = geometry.image
    assert (x1 - x0, y1 - y0) == (1024, 768)
    assert geometry.boxes[0] == (x0, y0, x0 + 57, y0 + 57)
    assert geometry.boxes[1][2:] == (x1, y1)
    assert geometry.heat == (x0 + 128, y0, x0 + 896, y1)
    assert all(t[3] <= geometry.canvas[1] and t[2] <= geometry.canvas[0] for t in geometry.tiles)
    assert geometry.tiles[0][1] > max(y1, geometry.colour_bar[3])


def test_small_images_are_shown_larger():
    assert display_scale(64, 48) == 5.0 and display_scale(800, 600) == 1.0


def test_output_names_never_collide():
    names = output_names(["x/a.jpg", "y/a.jpg", "z/A.png", "a-2.jpg", "w/.hidden.jpg", "q/we ird?.jpg"])
    assert names == ["a", "a-2", "A-3", "a-2-2", "hidden", "we_ird_"]


# --- the command ---

def explain_cli(checkpoint: Path, out_dir: Path, *args):
    return run_cli("explain", "-w", checkpoint, "--out", out_dir, *SCAN_OPTIONS, *args)


def test_explain_writes_picture_and_json(tiny_checkpoint, tmp_path):
    image = write_image(tmp_path / "photo.jpg", 300, 200, seed=1)
    result = explain_cli(tiny_checkpoint, tmp_path / "out", image)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "photo.explain.json").read_text())
    picture = Image.open(tmp_path / "out" / "photo.explain.png")
    assert record["picture"] == "photo.explain.png" and list(picture.size) == record["display"]["canvas"]
    assert record["checkpoint"] == "tiny-test"
    prediction = record["prediction"]
    assert prediction["path"] == str(image) and 0 <= prediction["probability"] <= 1
    assert prediction["verdict"]["label"] in ("no sign of generation", "generated") and prediction["threshold"] == 0.5
    assert [p["box"] for p in record["patches"]] == [[b["x0"], b["y0"], b["x1"], b["y1"]] for b in prediction["boxes"]]
    layers = np.array(record["attention"]["layers"])
    assert layers.shape == (3, 7) and np.allclose(layers.sum(axis=1), 1, atol=1e-4)
    assert [p["attention"] for p in record["patches"]] == pytest.approx(layers[-1, :6].tolist(), abs=1e-6)
    assert record["attention"]["tokens"][-1] == "global"
    assert np.array(record["activation"]["values"]).shape == (7, 7)
    assert record["activation"]["view_box"] == [50, 0, 250, 200]
    assert record["display"]["scale"] == display_scale(300, 200)
    scanned = run_cli("scan", "-w", tiny_checkpoint, "--json", *SCAN_OPTIONS, image)
    assert json.loads(scanned.stdout)["results"][0]["probability"] == pytest.approx(prediction["probability"], abs=1e-5)


def test_same_names_in_different_folders_do_not_overwrite(tiny_checkpoint, tmp_path):
    for folder, seed in (("x", 1), ("y", 2)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "a.jpg", 80, 60, seed=seed)
    result = explain_cli(tiny_checkpoint, tmp_path / "out", tmp_path / "x", tmp_path / "y")
    assert result.exit_code == 0, result.output
    paths = {json.loads((tmp_path / "out" / f"{name}.explain.json").read_text())["prediction"]["path"]
             for name in ("a", "a-2")}
    assert paths == {str(tmp_path / "x" / "a.jpg"), str(tmp_path / "y" / "a.jpg")}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a-2.explain.json", "a-2.explain.png", "a.explain.json", "a.explain.png"]


def test_bad_inputs_are_one_line_errors_and_the_run_goes_on(tiny_checkpoint, tmp_path):
    write_image(tmp_path / "good.png", 64, 48)
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    result = explain_cli(tiny_checkpoint, tmp_path / "out", tmp_path, tmp_path / "missing.jpg")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'notes.jpg'}: not an image (unrecognised format)",
                      f"error: {tmp_path / 'missing.jpg'}: no such file or directory"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.explain.json", "good.explain.png"]


def test_usage_errors_exit_2(tiny_checkpoint, tmp_path):
    image = write_image(tmp_path / "a.png")
    assert run_cli("explain", "-w", tiny_checkpoint, *SCAN_OPTIONS, image).exit_code == 2  # no --out
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert explain_cli(tiny_checkpoint, blocker, image).exit_code == 2
    assert explain_cli(tmp_path / "missing.pt", tmp_path / "out", image).exit_code == 2
    (tmp_path / "empty").mkdir()
    assert explain_cli(tiny_checkpoint, tmp_path / "out", tmp_path / "empty").exit_code == 1  # as scan


def test_explain_inputs_streams_in_input_order(tiny_detector, tmp_path):
    items = [InputItem(str(write_image(tmp_path / f"{k}.png", 40 + k, 30, seed=k))) for k in range(3)]
    items.insert(1, InputItem(str(tmp_path / "gone.png"), "no such file or directory"))
    results = list(explain_inputs(tiny_detector, items, tmp_path / "out"))
    assert [r.prediction.path for r in results] == [i.path for i in items]
    assert [r.picture is None for r in results] == [False, True, False, False]
    assert results[0].display.size == (320, 240)
