"""What a scan returns: one `Prediction` per input, its `Verdict`, its patch `Box`es and, for explanations,
its `Evidence`.

Plain dataclasses with no torch (nor numpy) imported, so that formatting, reports and programs that only read
results stay light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from .provenance.evidence import Provenance

# Verdict labels. None of them says a file is authentic: nothing here can prove that.
GENERATED = "generated"
AI_EDITED = "ai-edited"
NO_SIGN = "no sign of generation"
UNCERTAIN = "uncertain"  # the pixel score lies between the two thresholds
UNDETERMINED = "undetermined"  # no provenance and no pixel result
FLAGGED = (GENERATED, AI_EDITED)
LABELS = (GENERATED, AI_EDITED, UNCERTAIN, NO_SIGN)  # the verdicts a readable file gets, in the order shown


@dataclass
class Verdict:
    """The decision for one file, by precedence (provenance.verdict.decide): a signed declaration first,
    then unsigned metadata, then the pixel detector. `basis` says which evidence decided, `strength` how
    far it can be trusted, `sentence` says so in words."""

    label: str
    basis: str  # "signed-declaration", "tampered-manifest", "unsigned-metadata" or "pixels"
    strength: str  # "strong", "moderate", "weak", or "none" when nothing was known
    sentence: str
    disagreement: str | None = None  # provenance and pixels disagree: what each said

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Branches:
    """Each branch's own evidence for one image, so that a reader sees which spoke. `fused`: the global +
    local model's P(generated); `real_only`: how unlike the real photos it was fitted on the image's
    residuals are (negative log-likelihood), `real_only_threshold` the score above which the branch calls
    an image unusual (5 % of held-out real photos score above it); `real_only_error` why it could not score."""

    fused: float
    real_only: float | None = None
    real_only_threshold: float | None = None
    real_only_unusual: bool | None = None
    real_only_error: str | None = None


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
    """The result for one input: the pixel detector's probability, the verdict and their evidence, or an error.
    `provenance` is what the file declares about its origin (None when not read); `branches` what each pixel
    branch said (None when the checkpoint has no real-only branch or it was switched off)."""

    path: str
    probability: float | None = None  # the pixel detector's P(generated): the branches' combination
    verdict: Verdict | None = None
    threshold: float | None = None
    width: int | None = None
    height: int | None = None
    boxes: list[Box] = field(default_factory=list)
    error: str | None = None
    provenance: Provenance | None = None
    branches: Branches | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        return self.verdict.label if self.verdict else None

    @property
    def flagged(self) -> bool:
        return self.label in FLAGGED

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


def record_label(record: dict) -> str | None:
    """The verdict label of a result record (`Prediction.to_dict()`, read back from JSON lines); files
    written before verdicts had a basis held the label alone."""
    verdict = record.get("verdict")
    return verdict.get("label") if isinstance(verdict, dict) else verdict
