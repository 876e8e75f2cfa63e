"""Choosing a checkpoint's operating point on the user's own images.

A detector trained on one mix of sources is rarely calibrated for another: its probabilities drift
and 0.5 is an arbitrary cut. Given real images (and optionally generated ones) from the target
domain, this sets the decision threshold so that at most a target share of reals is flagged, and
with fakes also fits a logit bias so that the probabilities mean something there. Both go into the
checkpoint's metadata (`threshold`, `logit_bias`), which the engine already applies.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import file_sha256, load_checkpoint, save_checkpoint
from ..engine import Detector
from ..inputs import iter_inputs
from ..results import Prediction
from .evaluate import Progress, predict_files
from .metrics import PROBABILITY_UNIT, fpr_threshold


@dataclass(frozen=True)
class Calibration:
    """The chosen operating point and how it did on the calibration images."""

    threshold: float
    logit_bias: float  # the total bias to store: the checkpoint's previous one plus the fitted shift
    target_fpr: float
    fpr: float
    tpr: float | None
    n_real: int
    n_fake: int

    def to_dict(self) -> dict:
        return asdict(self)


def logits_of(probabilities: Sequence[float]) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_UNIT, 1 - PROBABILITY_UNIT)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def fit_logit_bias(real_logits: np.ndarray, fake_logits: np.ndarray) -> float:
    """The shift b that maximises the class-balanced likelihood of sigmoid(z + b): a 1-D logistic
    regression with the slope fixed at 1, because the engine can only add a bias. At the optimum
    the mean P(fake) of reals equals the mean P(real) of fakes, whatever the class ratio here."""
    if not len(real_logits) or not len(fake_logits):
        raise ValueError("fitting a bias needs both real and fake images")

    def gradient(b: float) -> float:  # increasing in b, from -1/2 to +1/2: bisection finds its root
        return 0.5 * (_sigmoid(real_logits + b).mean() - (1 - _sigmoid(fake_logits + b)).mean())

    low, high = -60.0, 60.0
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if gradient(middle) < 0 else (low, middle)
    return 0.5 * (low + high)


def calibrate_scores(real_probabilities: Sequence[float], fake_probabilities: Sequence[float], target_fpr: float,
                     previous_bias: float = 0.0) -> Calibration:
    """Threshold (and, with fakes, logit bias) from the detector's probabilities on the calibration
    images; the threshold is chosen on the bias-corrected probabilities the engine will produce."""
    real, fake = logits_of(real_probabilities), logits_of(fake_probabilities)
    shift = fit_logit_bias(real, fake) if fake.size else 0.0
    real_scores, fake_scores = _sigmoid(real + shift), _sigmoid(fake + shift)
    threshold = fpr_threshold(real_scores, target_fpr, fake_scores)
    return Calibration(threshold=threshold, logit_bias=previous_bias + shift, target_fpr=target_fpr,
                       fpr=float((real_scores >= threshold).mean()),
                       tpr=float((fake_scores >= threshold).mean()) if fake.size else None,
                       n_real=int(real.size), n_fake=int(fake.size))


def _score_folder(detector: Detector, folder: str | os.PathLike,
                  progress: Progress | None) -> tuple[list[float], list[Prediction]]:
    """Probabilities of the readable images under `folder`, and the predictions that failed."""
    if not Path(folder).is_dir():
        raise ValueError(f"{folder}: not a folder")
    items = list(iter_inputs([os.fspath(folder)]))
    failed = [Prediction(item.path, error=item.error) for item in items if item.error]
    [predictions] = predict_files(detector, [item.path for item in items if not item.error], progress=progress)
    return [p.probability for p in predictions if p.ok], failed + [p for p in predictions if not p.ok]


def calibrate_checkpoint(real_dir: str | os.PathLike, out: str | os.PathLike, fake_dir: str | os.PathLike | None = None,
                         target_fpr: float = 0.05, weights: str | os.PathLike | None = None, workers: int | None = None,
                         progress: Progress | None = None, **detector_options) -> tuple[Calibration, list[Prediction]]:
    """Score the images, calibrate, and write a copy of the checkpoint with `threshold`, `logit_bias`
    and a `calibration` record in its metadata. Returns the calibration and the unreadable images."""
    detector = Detector.load(weights, workers=workers, provenance=False, **detector_options)
    reals, failed = _score_folder(detector, real_dir, progress)
    fakes, failed_fakes = _score_folder(detector, fake_dir, progress) if fake_dir else ([], [])
    if not reals:
        raise ValueError(f"{real_dir}: no readable images to calibrate on")
    calibration = calibrate_scores(reals, fakes, target_fpr, detector.info.logit_bias)
    source = detector.info.path
    record = {**calibration.to_dict(), "real_dir": str(real_dir), "fake_dir": str(fake_dir) if fake_dir else None,
              "unreadable": len(failed) + len(failed_fakes), "source": str(source),
              "source_sha256": file_sha256(source),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    metadata = {**detector.info.metadata, "threshold": calibration.threshold, "logit_bias": calibration.logit_bias,
                "calibration": record}
    save_checkpoint(out, load_checkpoint(source, detector.info.config.patches)[0], metadata)  # unfolded
    return calibration, failed + failed_fakes
