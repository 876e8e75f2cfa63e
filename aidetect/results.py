"""What a scan returns: one `Prediction` per input, its patch `Box`es and, for explanations, its `Evidence`.

Plain dataclasses with no torch (nor numpy) imported, so that formatting, reports and programs that only read
results stay light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

REAL, GENERATED = "real", "generated"


@dataclass
class Box:
    """A selected patch in original-image pixels (x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    size: int  # the patch side the model used: 224 or 112 (PSM), 224 for the ablations
    score: float | None  # the PSM's activation score; None for the ablations


@dataclass
class Prediction:
    """The result for one input: a probability and its evidence, or an error."""

    path: str
    probability: float | None = None
    verdict: str | None = None
    threshold: float | None = None
    width: int | None = None
    height: int | None = None
    boxes: list[Box] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        """One line of JSON (the --jsonl format), non-ASCII paths kept as they are."""
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass
class Evidence:
    """What the model looked at for one image (for `aidetect explain`).

    activation: h x w channel sum of the global feature map, covering `view_box` of the image;
    attention: per fusion layer, the global token's head-averaged attention to [patches..., itself];
    crops: P x 224 x 224 x 3 uint8, the patches as the local branch saw them."""

    activation: np.ndarray
    attention: np.ndarray
    crops: np.ndarray
    view_box: tuple[int, int, int, int]
