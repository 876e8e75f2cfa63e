"""Evaluating a checkpoint on labelled sets, clean or perturbed, and the robustness sweep.

Perturbations must hit the pixels before the model sees them: the engine's decode workers apply
them to each decoded image (its `prepare` hook), so evaluation decodes exactly as `scan` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..datasets import ImageSet
from ..engine import Detector
from ..results import Prediction
from .metrics import Report, summarise
from .perturb import BLUR_SWEEP, JPEG_SWEEP, Perturbation

Progress = Callable[[int], None]


@dataclass
class EvalResult:
    """The report for one perturbation, plus the images that could not be scored (left out of it)."""

    perturbation: Perturbation
    report: Report
    errors: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"perturbation": self.perturbation.to_dict(), **self.report.to_dict(),
                "errors": [{"path": p, "error": e} for p, e in self.errors]}


class _Perturb:
    """The decode workers' `prepare` hook for evaluation jobs: job i is path i % count under perturbation
    i // count (a class, not a closure, so that it pickles for workers that are spawned)."""

    def __init__(self, perturbations: Sequence[Perturbation], count: int) -> None:
        self.perturbations = perturbations
        self.count = count

    def __call__(self, index: int, pixels: np.ndarray) -> np.ndarray:
        return self.perturbations[index // self.count](pixels)


def predict_files(detector: Detector, paths: Sequence[str | os.PathLike],
                  perturbations: Sequence[Perturbation] = (Perturbation(),),
                  progress: Progress | None = None) -> list[list[Prediction]]:
    """For each perturbation, the predictions for `paths` in order (unreadable files get `error` set).
    One stream serves every perturbation, so the decode workers start once and batches run on across."""
    jobs = [path for _ in perturbations for path in paths]
    predictions: list[Prediction] = []
    for prediction in detector.iter_predict(jobs, _Perturb(perturbations, len(paths))):
        predictions.append(prediction)
        if progress:
            progress(1)
    count = len(paths)
    return [predictions[i * count:(i + 1) * count] for i in range(len(perturbations))]


def unique_paths(sets: Sequence[ImageSet]) -> list:
    """Every image of `sets` once, in order: the generator sets of a held-out folder all hold its reals,
    which are scored once, not once per generator."""
    return list(dict.fromkeys(path for image_set in sets for path, _ in image_set.items))


def evaluate(detector: Detector, sets: Sequence[ImageSet], perturbations: Sequence[Perturbation] = (Perturbation(),),
             families: Mapping[str, str] | None = None, progress: Progress | None = None,
             balanced: bool = False) -> list[EvalResult]:
    """One result per perturbation: every image of the sets scored once (one stream, so batches span
    sets and perturbations) and summarised per set (`balanced`: class-balanced AP, for sets of one
    generator against every real)."""
    paths = unique_paths(sets)
    results = []
    for perturbation, predictions in zip(perturbations, predict_files(detector, paths, perturbations, progress)):
        by_path = dict(zip(paths, predictions))
        scored: dict[str, tuple[list[int], list[float]]] = {}
        for image_set in sets:
            labels, scores = scored.setdefault(image_set.name, ([], []))
            for path, label in image_set.items:
                prediction = by_path[path]
                if prediction.ok:
                    labels.append(label)
                    scores.append(prediction.probability)
        errors = [(p.path, p.error) for p in predictions if not p.ok]
        results.append(EvalResult(perturbation, summarise(scored, detector.threshold, families, balanced), errors))
    return results


def sweep_perturbations() -> list[Perturbation]:
    """JPEG 100..30, then blur 0..3 (blur 0 is the clean baseline)."""
    return [Perturbation(jpeg_quality=q) for q in JPEG_SWEEP] + [Perturbation(blur_sigma=s) for s in BLUR_SWEEP]
