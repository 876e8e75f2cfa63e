"""Choosing a checkpoint's operating point on images held out of its training, or on the user's own.

A detector trained on one mix of sources is rarely calibrated for another: its probabilities drift
and 0.5 is an arbitrary cut. Given real images (and optionally generated ones), this sets two
thresholds: "generated" at or above `threshold`, chosen so that at most a target share of reals is
flagged on every real source at once (a threshold that holds on the pooled reals can still flag half
of one camera's photos); "no sign of generation" below `lower_threshold`, under which at most a target
share of the fakes falls; in between, "uncertain". With fakes it also fits a logit bias so that the
probabilities mean something there. All of it goes into the checkpoint's metadata, which the engine
applies.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import file_sha256, load_checkpoint, save_checkpoint
from ..combine import Combination, fit_combination
from ..datasets import FAKE, REAL, label_of, labelled_images
from ..engine import Detector
from ..inputs import iter_inputs
from ..results import Prediction
from .evaluate import Progress, predict_files
from .metrics import PROBABILITY_UNIT, fpr_threshold


@dataclass(frozen=True)
class Calibration:
    """The chosen operating point and how it did on the calibration images."""

    threshold: float  # generated at or above
    logit_bias: float  # the total bias to store: the checkpoint's previous one plus the fitted shift
    target_fpr: float
    fpr: float  # reals flagged, pooled
    tpr: float | None  # fakes flagged
    n_real: int
    n_fake: int
    lower_threshold: float | None = None  # no sign of generation below (None: no band, without fakes)
    target_miss: float | None = None
    missed: float | None = None  # fakes below the lower threshold
    uncertain: dict[str, float] = field(default_factory=dict)  # share of reals / fakes in the band
    real_accuracy: dict[str, float] = field(default_factory=dict)  # per real source, at the threshold

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


def lower_threshold(fake_scores: Sequence[float], target_miss: float) -> float:
    """The highest threshold below which at most `target_miss` of the fakes fall (the cut lies on a fake's
    score: that fake and all above it stay out of "no sign of generation")."""
    if not 0.0 <= target_miss < 1.0:
        raise ValueError(f"target miss rate must lie in [0, 1), got {target_miss}")
    fakes = np.sort(np.asarray(fake_scores, dtype=np.float64))
    if not fakes.size:
        raise ValueError("choosing a lower threshold needs generated images")
    return float(fakes[int(np.floor(target_miss * fakes.size + 1e-9))])


def calibrate_scores(real_probabilities: Sequence[float], fake_probabilities: Sequence[float], target_fpr: float,
                     previous_bias: float = 0.0, real_sources: Sequence[str] | None = None,
                     target_miss: float = 0.05) -> Calibration:
    """Thresholds (and, with fakes, a logit bias) from the detector's probabilities on the calibration
    images, chosen on the bias-corrected probabilities the engine will produce. `real_sources` names each
    real's source: the threshold then holds the target on every source at once (the highest of their own)."""
    real, fake = logits_of(real_probabilities), logits_of(fake_probabilities)
    shift = fit_logit_bias(real, fake) if fake.size else 0.0
    real_scores, fake_scores = _sigmoid(real + shift), _sigmoid(fake + shift)
    sources = np.asarray(real_sources if real_sources is not None else [""] * real.size)
    names = sorted(set(sources.tolist()))
    threshold = max(fpr_threshold(real_scores[sources == name], target_fpr, fake_scores) for name in names)
    lower = min(lower_threshold(fake_scores, target_miss), threshold) if fake.size else None
    band = {} if lower is None else {
        "real": float(((real_scores >= lower) & (real_scores < threshold)).mean()),
        "fake": float(((fake_scores >= lower) & (fake_scores < threshold)).mean())}
    return Calibration(threshold=threshold, logit_bias=previous_bias + shift, target_fpr=target_fpr,
                       fpr=float((real_scores >= threshold).mean()),
                       tpr=float((fake_scores >= threshold).mean()) if fake.size else None,
                       n_real=int(real.size), n_fake=int(fake.size), lower_threshold=lower,
                       target_miss=target_miss if fake.size else None,
                       missed=float((fake_scores < lower).mean()) if fake.size else None, uncertain=band,
                       real_accuracy={name or "all": float((real_scores[sources == name] < threshold).mean())
                                      for name in names})


def _score(detector: Detector, paths: Sequence[str], progress: Progress | None) -> tuple[list[float], list[Prediction]]:
    """Probabilities of the readable images (None where unreadable), and the predictions that failed."""
    [predictions] = predict_files(detector, paths, progress=progress)
    return [p.probability if p.ok else None for p in predictions], [p for p in predictions if not p.ok]


def calibration_images(real_dir: str | os.PathLike, fake_dir: str | os.PathLike | None
                       ) -> tuple[list[str], list[str], list[str], list[Prediction]]:
    """(reals, their sources, fakes, unlisted inputs). A labelled root (0_real/1_fake folders below it, as a
    corpus's val_out) gives both classes, each real's source being its folder under the root; a plain folder
    gives reals of one source, and `fake_dir` the fakes."""
    root = Path(real_dir)
    for folder in (root, fake_dir):
        if folder is not None and not Path(folder).is_dir():
            raise ValueError(f"{folder}: not a folder")
    items = list(iter_inputs([os.fspath(root)]))
    labels = {item.path: label_of(item.path, root) for item in items if not item.error}
    if any(label is not None for label in labels.values()):
        if fake_dir:
            raise ValueError(f"{root} holds 0_real/1_fake folders: its fakes are used, drop --fake")
        for item in items:  # a labelled set with a hole would bias both thresholds: refuse it, as datasets do
            if item.error:
                raise ValueError(f"{item.path}: {item.error}")
        reals = [path for path, label in labels.items() if label == REAL]
        fakes = [path for path, label in labels.items() if label == FAKE]
        sources = [Path(path).relative_to(root).parts[0] for path in reals]
    else:
        reals, sources = list(labels), [""] * len(labels)
        fake_items = list(iter_inputs([os.fspath(fake_dir)])) if fake_dir else []
        fakes = [item.path for item in fake_items if not item.error]
        items += fake_items
    return reals, sources, fakes, [Prediction(item.path, error=item.error) for item in items if item.error]


def fit_branch_combination(detector: Detector, root: str | os.PathLike, progress: Progress | None = None
                           ) -> tuple[Combination, list[Prediction]]:
    """The combination of the detector's two branches fitted on a labelled root (0_real/1_fake below it) that the
    fused model did not train on (a corpus's val_in), and the images that could not be scored."""
    if detector.real_photo is None:
        raise ValueError(f"{detector.info.path}: this checkpoint has no real-only branch to combine")
    items = [(str(p), label) for p, label in labelled_images(root)]
    if not items:
        raise ValueError(f"{root}: no images in 0_real/1_fake folders to fit a combination on")
    paths, labels = zip(*items)
    [predictions] = predict_files(detector, paths, progress=progress)
    kept = [(p.branches.fused, p.branches.real_only, label) for p, label in zip(predictions, labels)
            if p.ok and p.branches.real_only is not None]
    if not kept:
        raise ValueError(f"{root}: no image both branches could score")
    fused, real_only, y = (np.array(column) for column in zip(*kept))
    # the engine combines the fused logit after the checkpoint's logit bias: fused probabilities carry it already
    return fit_combination(logits_of(fused), real_only, y), [p for p in predictions if not p.ok]


def calibrate_checkpoint(real_dir: str | os.PathLike, out: str | os.PathLike, fake_dir: str | os.PathLike | None = None,
                         target_fpr: float = 0.05, weights: str | os.PathLike | None = None, workers: int | None = None,
                         progress: Progress | None = None, target_miss: float = 0.05,
                         combine_on: str | os.PathLike | None = None,
                         **detector_options) -> tuple[Calibration, list[Prediction]]:
    """Score the images, calibrate, and write a copy of the checkpoint with `threshold`, `lower_threshold`,
    `logit_bias` and a `calibration` record in its metadata. With `combine_on` (a labelled root), the
    combination of the two branches is fitted there first (`fit_branch_combination`) and the operating
    point set on the combined probability; a checkpoint already combining keeps its combination. Where a
    combination is used, the fitted bias goes into it (it acts on the final logit). Returns the
    calibration and the unreadable images."""
    reals, sources, fakes, failed = calibration_images(real_dir, fake_dir)
    detector = Detector.load(weights, workers=workers, provenance=False, **detector_options)
    combination_record = None
    if combine_on is not None:
        detector.combination, combine_failed = fit_branch_combination(detector, combine_on, progress)
        failed += combine_failed
        combination_record = {"fitted_on": str(combine_on), "unreadable": len(combine_failed)}
    real_scores, real_failed = _score(detector, reals, progress)
    fake_scores, fake_failed = _score(detector, fakes, progress)
    kept = [(score, source) for score, source in zip(real_scores, sources) if score is not None]
    if not kept:
        raise ValueError(f"{real_dir}: no readable real images to calibrate on")
    calibration = calibrate_scores([s for s, _ in kept], [s for s in fake_scores if s is not None], target_fpr,
                                   detector.info.logit_bias, [source for _, source in kept], target_miss)
    failed += real_failed + fake_failed
    source = detector.info.path
    record = {**calibration.to_dict(), "real_dir": str(real_dir), "fake_dir": str(fake_dir) if fake_dir else None,
              "unreadable": len(failed), "source": str(source), "source_sha256": file_sha256(source),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    metadata = {**detector.info.metadata, "threshold": calibration.threshold,
                "lower_threshold": calibration.lower_threshold, "logit_bias": calibration.logit_bias,
                "calibration": record}
    combination = detector.combination
    if combination is not None and combination.uses_real_only:  # the shift acts on the final logit
        shift = calibration.logit_bias - detector.info.logit_bias
        combination = replace(combination, bias=combination.bias + shift)
        metadata.update(logit_bias=detector.info.logit_bias,
                        combination={**combination.to_dict(), **(combination_record or {})})
    model, info = load_checkpoint(source, detector.info.config.patches)  # unfolded
    save_checkpoint(out, model, metadata, info.real_photo)
    return calibration, failed
