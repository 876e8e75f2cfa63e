"""The engine's fast path: candidate crops from the decode workers and batched resizing change no result."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import write_image

from aidetect import Detector
from aidetect.decode import CandidateCrops, DecodeDataset
from aidetect.psm import candidate_boxes, select_boxes
from aidetect.transforms import INPUT_SIZE, crop_patches

# width x height: two large enough for the candidate path (one a strip barely taller than a patch),
# and small ones that travel whole
SIZES = [(1400, 1300), (7600, 230), (300, 200), (37, 1500), (1, 1)]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("fastpath")
    return [write_image(folder / f"{w}x{h}.jpg", w, h, seed=i, quality=90) for i, (w, h) in enumerate(SIZES)]


def _boxes(prediction) -> list[tuple[int, int, int, int]]:
    return [(b.x0, b.y0, b.x1, b.y1) for b in prediction.boxes]


def test_large_images_travel_as_candidate_crops(images):
    dataset = DecodeDataset(images, max_pixels=10**8, cut_candidates=True)
    decoded = [dataset[i] for i in range(len(images))]
    assert [isinstance(d.source, CandidateCrops) for d in decoded] == [True, True, False, False, False]
    for d in decoded[:2]:
        assert sum(c.numel() for c in d.source.crops) < d.size[0] * d.size[1] * 3


def test_candidate_path_gives_the_same_predictions(tiny_checkpoint, images):
    """Same probabilities, boxes and evidence with and without the candidate crops (batch mixes both)."""
    fast = Detector.load(tiny_checkpoint, device="cpu", batch_size=5, candidate_crops=True)
    plain = Detector.load(tiny_checkpoint, device="cpu", batch_size=5, candidate_crops=False)
    for (a, ea), (b, eb) in zip(fast.explain(images), plain.explain(images)):
        assert a.ok and b.ok and (a.width, a.height) == (b.width, b.height)
        assert abs(a.probability - b.probability) < 1e-5 and _boxes(a) == _boxes(b)
        assert (ea.crops == eb.crops).all() and ea.view_box == eb.view_box


@pytest.mark.parametrize("size", [(4000, 6000), (230, 7600), (224, 224), (1, 1), (100, 3000)])
def test_every_psm_box_is_a_candidate(size):
    candidates = [set(map(tuple, group.tolist())) for group in candidate_boxes(size, (7, 7))]
    fm = torch.rand(64, 4, 7, 7, generator=torch.Generator().manual_seed(0)) ** 4  # peaky maps: varied picks
    boxes, _ = select_boxes(fm, torch.tensor([size] * 64))
    for image_boxes in boxes.tolist():
        assert all(tuple(box) in candidates[0 if k < 3 else 1] for k, box in enumerate(image_boxes))


def test_batched_resizing_equals_one_crop_at_a_time():
    generator = torch.Generator().manual_seed(0)
    sizes = [(1024, 768), (300, 200), (37, 1500), (1, 1)]
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=generator) for h, w in sizes]
    boxes, _ = select_boxes(torch.rand(len(sizes), 4, 7, 7, generator=generator), torch.tensor(sizes))
    expected = []
    for image, image_boxes in zip(images, boxes.tolist()):
        row = []
        for top, left, bottom, right in image_boxes:
            patch = image[None, :, top:bottom, left:right].float() / 255
            if patch.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
                patch = F.interpolate(patch, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=True)
            row.append(patch[0])
        expected.append(torch.stack(row))
    assert torch.equal(crop_patches(images, boxes), torch.stack(expected))
