"""Converting published PSM checkpoints: every tensor lands where it belongs, and bad files say why."""

import json

import numpy as np
import pytest
import torch
from helpers import run_cli, shared_file
from PIL import Image

from aidetect.checkpoint import load_checkpoint, save_checkpoint
from aidetect.convert import ConvertError, convert_checkpoint, convert_state_dict, rename, unwrap
from aidetect.engine import Detector
from aidetect.model import STANDARDISATION


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    """A state dict with exactly the published keys and shapes, every tensor filled with distinct
    values (small weights and positive variances, so a forward pass stays finite)."""
    layout = json.loads(shared_file("reference_checkpoint_keys.json").read_text())["keys"]
    generator = torch.Generator().manual_seed(0)
    state = {}
    for index, entry in enumerate(layout):
        if entry["dtype"] == "int64":
            state[entry["key"]] = torch.tensor(index, dtype=torch.int64)
        elif entry["key"].endswith("running_var"):
            state[entry["key"]] = torch.rand(entry["shape"], generator=generator) + 0.5
        else:
            state[entry["key"]] = torch.randn(entry["shape"], generator=generator) * 0.02
    assert len(state) == 360
    return state


def _check_every_tensor(reference: dict, converted: dict) -> None:
    placed = {rename(key): key for key in reference if rename(key) is not None}
    assert set(placed) == set(converted) - set(STANDARDISATION), "converted keys differ from the renamed reference keys"
    mean, std = (converted[key] for key in STANDARDISATION)  # the published model has none: identity
    assert mean.shape == (2048,) and not mean.any() and (std == 1).all()
    for new, old in placed.items():
        assert converted[new].dtype == reference[old].dtype, new
        assert torch.equal(converted[new], reference[old]), f"{old} did not land in {new}"
    assert {k for k in reference if rename(k) is None} == {"resnet.fc.weight", "resnet.fc.bias"}


@pytest.mark.parametrize("layout", ["plain", "wrapped_dataparallel"])
def test_converted_checkpoint_holds_every_tensor(tmp_path, reference_state, layout):
    payload = reference_state
    if layout == "wrapped_dataparallel":
        payload = {"model": {f"module.{k}": v for k, v in reference_state.items()}, "epoch": 3}
    source = tmp_path / "PSM.pth"
    torch.save(payload, source)
    if layout == "plain":
        convert_checkpoint(source, tmp_path / "psm.pt")
    else:  # through the command line
        result = run_cli("convert", source, tmp_path / "psm.pt")
        assert result.exit_code == 0 and "wrote" in result.stdout, result.stderr
    model, info = load_checkpoint(tmp_path / "psm.pt")
    assert info.config.backbone == "resnet50" and info.config.patches == "psm"
    assert info.threshold == 0.5 and info.metadata["converted_from"]["path"] == str(source)
    _check_every_tensor(reference_state, model.state_dict())
    if layout == "plain":  # one forward pass through the whole model
        pixels = np.random.default_rng(0).integers(0, 256, (240, 260, 3), dtype=np.uint8)
        [prediction] = Detector(model, info, device="cpu", batch_size=1).predict([Image.fromarray(pixels)])
        assert prediction.ok and 0.0 <= prediction.probability <= 1.0 and len(prediction.boxes) == 6


def test_unwrap_each_layout():
    state = {"fc.bias": torch.zeros(1)}
    assert unwrap(state) == state
    assert unwrap({"module.fc.bias": state["fc.bias"]}) == state
    assert unwrap({"model": state, "optimizer": {}}) == state
    assert unwrap({"state_dict": {"module.fc.bias": state["fc.bias"]}}) == state
    with pytest.raises(ConvertError, match="not a state dict"):
        unwrap({"model": "weights", "epoch": 1})


def test_mismatched_state_dicts_are_clear_errors(reference_state):
    missing = {k: v for k, v in reference_state.items() if not k.startswith("mha_list.2.")}
    with pytest.raises(ConvertError, match="missing 12 keys.*fusion.layers.2"):
        convert_state_dict(missing)
    extra = {**reference_state, "mha_list.3.ln1.bias": torch.zeros(128)}
    with pytest.raises(ConvertError, match="unexpected keys.*mha_list.3.ln1.bias"):
        convert_state_dict(extra)
    narrow = {**reference_state, "fc1.weight": torch.zeros(64, 2048)}
    with pytest.raises(ConvertError, match=r"wrong shapes: embed_proj.weight \(64, 2048\)"):
        convert_state_dict(narrow)


def test_files_that_are_not_psm_checkpoints(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(ConvertError, match="not a readable PyTorch checkpoint"):
        convert_checkpoint(junk, tmp_path / "out.pt")
    with pytest.raises(ConvertError, match="no such file"):
        convert_checkpoint(tmp_path / "absent.pth", tmp_path / "out.pt")
    from aidetect.config import ModelConfig
    from aidetect.model import FusedDetector

    ours = save_checkpoint(tmp_path / "ours.pt", FusedDetector(ModelConfig(backbone="tiny")))
    with pytest.raises(ConvertError, match="already an aidetect checkpoint"):
        convert_checkpoint(ours, tmp_path / "out.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ConvertError, match="other.pth: unexpected keys"):
        convert_checkpoint(tmp_path / "other.pth", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    result = run_cli("convert", junk, tmp_path / "out.pt")
    assert result.exit_code == 2 and "junk.pth: not a readable PyTorch checkpoint" in result.stderr
