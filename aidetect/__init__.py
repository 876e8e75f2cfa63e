"""aidetect: tell AI-generated images from real photographs.

    from aidetect import Detector
    results = Detector.load().predict(["photo.jpg"])

The names below are imported on first use (PEP 562), so that `aidetect --help` does not wait for torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Detector": "engine", "Box": "results", "Prediction": "results", "Evidence": "results",
    "FusedDetector": "model", "ModelConfig": "config", "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
