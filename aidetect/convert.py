"""Converting a published PSM checkpoint (the authors' Patch5Model, sidbench's PSM.pth) to aidetect's format.

Those files are plain state dicts of the same network, possibly wrapped as {'model': ...} and with
DataParallel's `module.` prefix; only the module names differ (see reference_checkpoint_keys.json):
`resnet.X` is our ResNet-50 trunk's `backbone.X` (torchvision names kept), `fc1.` the projection,
`mha_list.N.*` the fusion layers and `fc.` the classifier. The trunk's own `resnet.fc` classifier
is unused by the model and dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from .checkpoint import FORMAT, file_sha256, save_checkpoint
from .config import FeatureLevels, ModelConfig
from .model import STANDARDISATION, FusedDetector

PREFIXES = (("resnet.", "backbone."), ("fc1.", "embed_proj."), ("mha_list.", "fusion.layers."), ("fc.", "classifier."))
DROPPED = ("resnet.fc.",)
_WRAPPERS = ("model", "state_dict")
_SHOWN = 3


class ConvertError(Exception):
    """A file that is not a PSM checkpoint this converter understands; the message says why."""


def _listing(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def unwrap(payload: object) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded file: {'model': sd} or {'state_dict': sd} or sd itself, `module.` removed."""
    if isinstance(payload, dict):
        for key in _WRAPPERS:
            if isinstance(payload.get(key), dict):
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not payload or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ConvertError("not a state dict of tensors (nor one wrapped under 'model' or 'state_dict')")
    if all(key.startswith("module.") for key in payload):
        payload = {key[len("module."):]: value for key, value in payload.items()}
    return payload


def rename(key: str) -> str | None:
    """aidetect's name for a PSM key; None for dropped keys; the key unchanged if no rule applies."""
    if key.startswith(DROPPED):
        return None
    for old, new in PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> FusedDetector:
    """A resnet50 FusedDetector holding the PSM weights; ConvertError for missing or unexpected keys
    and for shapes that differ (another embedding size, another backbone). The published model makes
    its tokens from the last feature map, unstandardised: features=last, the identity standardisation."""
    model = FusedDetector(ModelConfig(backbone="resnet50", features=FeatureLevels.last.value))
    target = model.state_dict()
    renamed = {new: value for key, value in state.items() if (new := rename(key)) is not None}
    unexpected = sorted(key for key in state if (new := rename(key)) is not None and new not in target)
    missing = sorted(key for key in target if key not in renamed and key not in STANDARDISATION)
    if unexpected:
        raise ConvertError(f"unexpected keys for a PSM checkpoint: {_listing(unexpected)}")
    if missing:
        raise ConvertError(f"missing {len(missing)} keys of the PSM model: {_listing(missing)}")
    wrong = [f"{key} {tuple(value.shape)} (expected {tuple(target[key].shape)})"
             for key, value in renamed.items() if value.shape != target[key].shape]
    if wrong:
        raise ConvertError(f"wrong shapes: {_listing(wrong)}")
    model.load_state_dict({**target, **renamed})
    return model.eval()


def convert_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Read a published PSM checkpoint with torch.load(weights_only=True) and write it as an aidetect
    checkpoint (threshold 0.5, the source file and its hash recorded in the metadata)."""
    source = Path(source)
    if not source.is_file():
        raise ConvertError(f"{source}: no such file")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one that would need to run code
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"{source}: not a readable PyTorch checkpoint ({reason})") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        raise ConvertError(f"{source}: already an aidetect checkpoint")
    try:
        model = convert_state_dict(unwrap(payload))
    except ConvertError as exc:
        raise ConvertError(f"{source}: {exc}") from None
    metadata = {"name": source.stem, "threshold": 0.5, "converted_from": {
        "path": str(source), "sha256": file_sha256(source), "layout": "PSM (Ju et al., ICIP 2022) state dict"}}
    return save_checkpoint(target, model, metadata)
