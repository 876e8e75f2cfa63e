"""Checkpoints: a round trip keeps everything; every unusable file is a CheckpointError naming it, never
code execution, and the CLI turns it into one line on stderr with exit status 2."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import pytest
import torch
from helpers import SCAN_OPTIONS, run_cli, write_image

from aidetect.checkpoint import FORMAT, CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from aidetect.config import ModelConfig
from aidetect.model import FusedDetector


class _Trap:
    """Unpickling this creates a folder: proof that the file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _truncated(path: Path, checkpoint: Path) -> None:
    data = checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path, checkpoint: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(4096))


def _plain_state_dict(path: Path, checkpoint: Path) -> None:
    torch.save(FusedDetector(ModelConfig(backbone="tiny")).state_dict(), path)


def _pickled_object(path: Path, checkpoint: Path) -> None:
    path.write_bytes(pickle.dumps({"format": FORMAT, "trap": _Trap(path.parent / "pwned")}, protocol=2))


def _torch_saved_object(path: Path, checkpoint: Path) -> None:
    torch.save({"format": FORMAT, "trap": _Trap(path.parent / "pwned")}, path)


def _future_version(path: Path, checkpoint: Path) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "format_version": 99}, path)


def _unknown_backbone(path: Path, checkpoint: Path) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "config": {**payload["config"], "backbone": "vgg-9000"}}, path)


def _wrong_weights(path: Path, checkpoint: Path) -> None:
    payload = torch.load(checkpoint, weights_only=True)
    state = {k: v for k, v in payload["state_dict"].items() if not k.startswith("classifier.")}
    torch.save({**payload, "state_dict": state}, path)


BAD_CHECKPOINTS = {
    "truncated": (_truncated, "not a readable aidetect checkpoint"),
    "random bytes": (_random_bytes, "not a readable aidetect checkpoint"),
    "plain state dict": (_plain_state_dict, "not an aidetect checkpoint"),
    "pickled object": (_pickled_object, "not a readable aidetect checkpoint"),
    "torch-saved object": (_torch_saved_object, "not a readable aidetect checkpoint"),
    "future format version": (_future_version, "format version 99"),
    "unknown backbone": (_unknown_backbone, "invalid model config"),
    "weights of another model": (_wrong_weights, "weights do not match"),
}
CARD_ERRORS = [kind for kind in BAD_CHECKPOINTS if kind != "weights of another model"]  # info builds no model


def _make_bad(kind: str, checkpoint: Path, folder: Path) -> tuple[Path, str]:
    make, reason = BAD_CHECKPOINTS[kind]
    path = folder / "model.pt"
    make(path, checkpoint)
    return path, reason


def _assert_one_line_exit_2(result, path: Path, reason: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0]
    assert not (path.parent / "pwned").exists(), "loading the checkpoint ran code"


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_a_clear_error(tiny_checkpoint, tmp_path, kind):
    path, reason = _make_bad(kind, tiny_checkpoint, tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message
    assert not (path.parent / "pwned").exists(), "loading the checkpoint ran code"


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_scan_prints_one_line_and_exits_2(tiny_checkpoint, tmp_path, kind):
    path, reason = _make_bad(kind, tiny_checkpoint, tmp_path)
    _assert_one_line_exit_2(run_cli("scan", "-w", path, *SCAN_OPTIONS, write_image(tmp_path / "photo.png")),
                            path, reason)


@pytest.mark.parametrize("kind", CARD_ERRORS)
def test_info_prints_one_line_and_exits_2(tiny_checkpoint, tmp_path, kind):
    path, reason = _make_bad(kind, tiny_checkpoint, tmp_path)
    _assert_one_line_exit_2(run_cli("info", "-w", path, "--json"), path, reason)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "absent.pt")


def test_round_trip_keeps_config_weights_and_metadata(tmp_path):
    torch.manual_seed(1)
    model = FusedDetector(ModelConfig(backbone="tiny", patches="rsz448"))
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, {"threshold": 0.3, "name": "round-trip"})
    loaded, info = load_checkpoint(path)
    assert info.config == model.config and info.threshold == 0.3 and info.name == "round-trip"
    assert "date" in info.metadata and not loaded.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # written atomically, nothing left over


def test_version_1_checkpoints_load_as_last_level_tokens(tmp_path):
    """Version 1 (before descriptors of several levels) made tokens from the last map, unstandardised."""
    torch.manual_seed(0)
    model = FusedDetector(ModelConfig(backbone="tiny", features="last")).eval()
    state = {k: v for k, v in model.state_dict().items() if k not in ("descriptor_mean", "descriptor_std")}
    config = {k: v for k, v in model.config.to_dict().items() if k != "features"}
    torch.save({"format": FORMAT, "format_version": 1, "config": config, "state_dict": state, "metadata": {}},
               tmp_path / "v1.pt")
    loaded, info = load_checkpoint(tmp_path / "v1.pt")
    assert info.config.features == "last"
    views = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(views, views).logits, model(views, views).logits)
