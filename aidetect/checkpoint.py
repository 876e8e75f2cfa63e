"""Checkpoint format: one file with a format version, the model config, the weights and metadata.

Files are read with `torch.load(weights_only=True)`, so a checkpoint can never run code, and every
failure is a `CheckpointError` naming the file. `resolve_weights` finds the checkpoint to use:
an explicit path, then $AIDETECT_WEIGHTS, then the default shipped inside the package.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_open
from .combine import Combination
from .config import ModelConfig
from .forensic import RealPhotoModel
from .model import STANDARDISATION, FusedDetector

FORMAT = "aidetect-checkpoint"
FORMAT_VERSION = 2  # 2: tokens from descriptors (ModelConfig.features) with their standardisation
REAL_PHOTO_KEY = "real_photo_model"  # optional: the real-only branch's fitted state (aidetect.forensic)
DEFAULT_NAME = "aidetect-default.pt"
ENV_VAR = "AIDETECT_WEIGHTS"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and says why."""


@dataclass
class CheckpointInfo:
    """What a checkpoint says about itself (the "model card" part)."""

    path: Path
    config: ModelConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    real_photo: RealPhotoModel | None = None  # the real-only branch, when the checkpoint carries one

    @property
    def threshold(self) -> float:
        """P(generated) at or above which the verdict is "generated"."""
        return float(self.metadata.get("threshold", 0.5))

    @property
    def lower_threshold(self) -> float:
        """Below it, "no sign of generation"; between the two, "uncertain" (none when they are equal)."""
        lower = self.metadata.get("lower_threshold")
        return self.threshold if lower is None else min(float(lower), self.threshold)

    @property
    def logit_bias(self) -> float:
        return float(self.metadata.get("logit_bias", 0.0))

    @property
    def combination(self) -> Combination:
        """How the fused model's logit and the real-only branch's score make the final probability
        (the fused model's alone unless a combination was fitted and chosen: `aidetect calibrate --combine-on`)."""
        found = self.metadata.get("combination")
        return Combination.from_dict(found) if isinstance(found, dict) and self.real_photo is not None else Combination()

    def real_photo_summary(self) -> dict[str, Any] | None:
        """The real-only branch in a few numbers (for `aidetect info` and JSON outputs), or None without it."""
        real = self.real_photo
        if real is None:
            return None
        return {"filters": real.config.filter_kind, "fitted_images": real.fitted_images,
                "held_out_images": real.held_out_images, "threshold": real.threshold,
                "combination": self.combination.to_dict()}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.path.stem))


def default_weights_path() -> Path:
    """The checkpoint shipped in weights/ (installed as the package `aidetect.weights`; in a source
    tree that was not installed, the weights/ folder beside the package)."""
    try:
        return Path(str(resources.files("aidetect.weights").joinpath(DEFAULT_NAME)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "weights" / DEFAULT_NAME


def resolve_weights(explicit: str | os.PathLike | None = None) -> Path:
    """--weights, then $AIDETECT_WEIGHTS, then the shipped default."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return default_weights_path()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: FusedDetector, metadata: dict[str, Any] | None = None,
                    real_photo: RealPhotoModel | None = None) -> Path:
    """Write `model` atomically, with its config, `metadata` (threshold, training data, metrics...) and the
    real-only branch's fitted model when there is one (plain tensors and numbers: weights_only loads it)."""
    if model.backbone.folded:
        raise ValueError("this model was folded for inference (Detector.load): save the checkpoint's own model")
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **(metadata or {})}
    meta = json.loads(json.dumps(meta, default=str))  # plain types only: weights_only loading must accept it
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    if real_photo is not None:
        payload[REAL_PHOTO_KEY] = real_photo.to_state()
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
    return Path(path)


def read_checkpoint(path: str | os.PathLike) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """Read and validate a checkpoint file without building the model."""
    path = Path(path)
    if not path.is_file():
        hint = "" if path != default_weights_path() else " (the default checkpoint is missing: reinstall aidetect or pass --weights)"
        raise CheckpointError(f"{path}: no such checkpoint file{hint}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns on some corrupt files before failing: one line is ours
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, random bytes...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable aidetect checkpoint ({reason[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an aidetect checkpoint (a published PSM checkpoint? "
                              f"convert it with `aidetect convert`)")
    version = payload.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {version} "
                              f"is not supported (this aidetect reads versions 1 and {FORMAT_VERSION})")
    state = payload.get("state_dict") or {}
    try:
        config, state = (payload["config"], state) if version == FORMAT_VERSION else _from_version_1(payload["config"], state)
        config = ModelConfig.from_dict(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    real_photo = None
    if payload.get(REAL_PHOTO_KEY) is not None:
        try:
            real_photo = RealPhotoModel.from_state(payload[REAL_PHOTO_KEY])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: invalid real-photo model ({exc})") from None
    return CheckpointInfo(path, config, dict(payload.get("metadata") or {}), real_photo), state


def _from_version_1(config: dict, state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Version 1 made tokens from the last feature map alone, unstandardised: the same model as version 2
    with features=last and an identity standardisation."""
    dim = state["embed_proj.weight"].shape[1]
    mean, std = STANDARDISATION
    return {**config, "features": "last"}, {**state, mean: torch.zeros(dim), std: torch.ones(dim)}


def load_checkpoint(path: str | os.PathLike | None = None,
                    patches: str | None = None) -> tuple[FusedDetector, CheckpointInfo]:
    """Build the model a checkpoint describes and load its weights (eval mode, on the CPU). `patches`
    swaps the patch strategy: the weights do not depend on it (the paper's ablations use the same ones)."""
    info, state = read_checkpoint(resolve_weights(path))
    if patches is not None and patches != info.config.patches:
        info = replace(info, config=replace(info.config, patches=patches))
    model = FusedDetector(info.config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        detail = ", ".join([f"missing {k}" for k in missing[:3]] + [f"unexpected {k}" for k in unexpected[:3]])
        raise CheckpointError(f"{info.path}: weights do not match a {info.config.backbone} model ({detail})")
    return model.eval(), info


def describe_checkpoint(path: str | os.PathLike | None = None) -> tuple[dict, CheckpointInfo]:
    """A checkpoint's card (`aidetect info`): file, hash, size, parameters, config, threshold and metadata.
    The model is built, so weights that do not fit the config are a CheckpointError here too."""
    path = resolve_weights(path)
    model, info = load_checkpoint(path)
    summary = {"path": str(path), "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
               "parameters": sum(p.numel() for p in model.parameters()), "config": info.config.to_dict(),
               "threshold": info.threshold, **{k: v for k, v in info.metadata.items() if k != "threshold"}}
    if info.real_photo is not None:
        summary["real_photo_model"] = info.real_photo_summary()
    return summary, info
