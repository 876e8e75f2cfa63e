"""The PSM must return exactly the boxes that the paper's published code returns."""

import json

import pytest
import torch
from helpers import shared_file

from aidetect.psm import select_boxes


def _cases():
    data = json.loads(shared_file("psm_parity_vectors.json").read_text())
    return data["cases"]


def test_every_parity_vector_matches():
    cases = _cases()
    assert len(cases) >= 40
    mismatches = []
    for case in cases:
        fm = torch.tensor(case["fm"], dtype=torch.float32)
        sizes = torch.tensor(case["scale"], dtype=torch.int64)
        boxes, scores = select_boxes(fm, sizes)
        assert boxes.shape == (int(case["B"]), 6, 4) and scores.shape == (int(case["B"]), 6)
        if boxes.tolist() != case["boxes"]:
            mismatches.append(case["name"])
    assert not mismatches, f"boxes differ from the reference for {mismatches}"


@pytest.mark.parametrize("size", [(224, 224), (1, 1), (100, 3000), (4000, 6000)])
def test_boxes_stay_inside_the_image(size):
    torch.manual_seed(0)
    fm = torch.rand(2, 4, 7, 7)
    boxes, _ = select_boxes(fm, torch.tensor([size, size]))
    h, w = size
    assert (boxes[..., :2] >= 0).all()
    assert (boxes[..., 2] <= h).all() and (boxes[..., 3] <= w).all()
    assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()
