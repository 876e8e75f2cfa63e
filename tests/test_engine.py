"""The inference engine: batching and worker processes never change a CPU result; the Python API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from aidetect import Detector
from aidetect.images import load_image
from aidetect.transforms import global_view

SIZES = [(224, 224), (300, 200), (150, 400), (640, 480), (1, 1), (37, 1500)]  # width x height


@pytest.fixture(scope="module")
def sized_images(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("sizes")
    return [write_image(folder / f"{w}x{h}.png", w, h, seed=i) for i, (w, h) in enumerate(SIZES)]


def _boxes(prediction) -> list[tuple[int, int, int, int]]:
    return [(b.x0, b.y0, b.x1, b.y1) for b in prediction.boxes]


def test_batched_and_one_by_one_agree(tiny_checkpoint, sized_images):
    batched = Detector.load(tiny_checkpoint, device="cpu", batch_size=len(SIZES)).predict(sized_images)
    single = Detector.load(tiny_checkpoint, device="cpu", batch_size=1).predict(sized_images)
    assert len({p.probability for p in single}) > 3  # the images really differ for this model
    for one, many in zip(single, batched):
        assert one.ok and many.ok
        assert abs(one.probability - many.probability) < 1e-4, one.path
        assert _boxes(one) == _boxes(many)


def test_results_do_not_depend_on_workers(tiny_checkpoint, sized_images, tmp_path):
    (tmp_path / "bad.jpg").write_text("not an image")
    inputs = [*sized_images[:3], tmp_path / "bad.jpg", *sized_images[3:]]
    inline = Detector.load(tiny_checkpoint, device="cpu", batch_size=4, workers=0).predict(inputs)
    pooled = Detector.load(tiny_checkpoint, device="cpu", batch_size=4, workers=2).predict(inputs)
    assert [p.path for p in pooled] == [p.path for p in inline]
    assert [p.error for p in pooled] == [p.error for p in inline] and not inline[3].ok
    for a, b in zip(inline, pooled):
        assert a.probability == b.probability or abs(a.probability - b.probability) < 1e-6
        assert _boxes(a) == _boxes(b)


def test_engine_matches_the_model_forward(tiny_detector, sized_images):
    """The engine's split passes (global, CPU crops, local, fusion) equal one plain forward of the model."""
    for path, prediction in zip(sized_images, tiny_detector.predict(sized_images)):
        pixels = torch.from_numpy(load_image(path)).permute(2, 0, 1).contiguous()
        with torch.no_grad():
            out = tiny_detector.model(global_view(pixels)[None].float() / 255, [pixels])
        assert abs(torch.sigmoid(out.logits).item() - prediction.probability) < 1e-4
        assert _boxes(prediction) == [(l, t, r, b) for t, l, b, r in out.seen.boxes[0].tolist()]


def test_boxes_lie_inside_every_image(tiny_detector, sized_images):
    for (width, height), prediction in zip(SIZES, tiny_detector.predict(sized_images)):
        assert (prediction.width, prediction.height) == (width, height)
        for x0, y0, x1, y1 in _boxes(prediction):
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_predict_accepts_paths_and_pil_images(tiny_checkpoint, tmp_path):
    path = write_image(tmp_path / "photo.png", 120, 90)
    in_memory = Image.fromarray(np.asarray(Image.open(path)))  # no file name
    detector = Detector.load(tiny_checkpoint, device="cpu")
    from_str, from_path, opened, anonymous = detector.predict([str(path), path, Image.open(path), in_memory])
    assert from_str.path == from_path.path == opened.path == str(path)
    assert anonymous.path == "<image 3>"
    assert from_str.probability == from_path.probability == opened.probability == anonymous.probability
    assert from_str.label in ("no sign of generation", "generated") and from_str.threshold == 0.5


def test_errors_keep_their_place_in_the_order(tiny_detector, tmp_path):
    good = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    (tmp_path / "bad.jpg").write_text("nope")
    results = tiny_detector.predict([good[0], tmp_path / "bad.jpg", good[1], tmp_path / "gone.png", good[2]])
    assert [p.ok for p in results] == [True, False, True, False, True]
    assert [p.path for p in results][::2] == [str(g) for g in good]


def test_threshold_decides_the_verdict(tiny_checkpoint, tmp_path):
    path = write_image(tmp_path / "photo.png")
    assert Detector.load(tiny_checkpoint, device="cpu", threshold=0.0).predict([path])[0].label == "generated"
    assert Detector.load(tiny_checkpoint, device="cpu", threshold=1.0).predict([path])[0].label == "no sign of generation"


def test_empty_input(tiny_detector):
    assert tiny_detector.predict([]) == []


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"workers": -1}, {"threshold": 1.5}, {"device": "toaster"}])
def test_invalid_options_are_value_errors(tiny_checkpoint, options):
    with pytest.raises(ValueError):
        Detector.load(tiny_checkpoint, **{"device": "cpu", **options})


def test_global_view_of_a_strip_resizes_only_its_central_band(monkeypatch):
    """A 1 x 40000 strip would resize to 224 x 9 million pixels; only a 1 x 32 band may reach the resize."""
    from aidetect import transforms

    seen = []
    resize = transforms.F.interpolate
    monkeypatch.setattr(transforms.F, "interpolate", lambda x, **kw: seen.append(tuple(x.shape)) or resize(x, **kw))
    view = global_view(torch.zeros(3, 1, 40000, dtype=torch.uint8))
    assert view.shape == (3, 224, 224)
    assert seen == [(1, 3, 1, transforms.MAX_VIEW_ASPECT)]


@pytest.mark.parametrize("height, width", [(4, 1000), (1000, 7), (10, 320)])
def test_trimming_a_strip_does_not_change_its_view(height, width):
    """Only the central band is resized, yet the view equals that of resizing the whole strip."""
    strip = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = TF.center_crop(TF.resize(strip, 224, antialias=True), [224, 224])
    assert torch.equal(global_view(strip), whole)


@pytest.mark.parametrize("cores, device, expected", [(2, "cpu", 0), (1, "cpu", 0), (8, "cpu", 2), (2, "cuda", 2)])
def test_default_decode_workers_leave_a_small_cpu_to_the_model(monkeypatch, cores, device, expected):
    """On 2 cores, decode workers take the cores the model runs on (README, "Speed and memory"): none by default there."""
    from aidetect import runtime

    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert runtime.default_workers(torch.device(device)) == expected


def test_detector_resolves_its_default_workers(tiny_checkpoint, monkeypatch):
    from aidetect import runtime

    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert Detector.load(tiny_checkpoint, device="cpu").workers == 2
    assert Detector.load(tiny_checkpoint, device="cpu", workers=1).workers == 1
