"""Shared fixtures: where the shared data lives, and a tiny random checkpoint built on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("AIDETECT_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test with the reason when this checkout has none beside it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found (set AIDETECT_SHARED to the shared folder)")
    return path
