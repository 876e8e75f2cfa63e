"""Evaluating a checkpoint on labelled sets, clean or perturbed, and the robustness sweep.

Perturbations must hit the pixels before the model sees them: the engine's decode workers apply
them to each decoded image (its `prepare` hook), so evaluation decodes exactly as `scan` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..config import Branch
from ..datasets import ImageSet
from ..engine import Detector
from ..results import Prediction
from .metrics import Interval, Report, ap_figures, ap_intervals, summarise
from .perturb import BLUR_SWEEP, JPEG_SWEEP, Perturbation

Progress = Callable[[int], None]


@dataclass
class EvalResult:
    """The report for one perturbation, the bootstrap intervals of its APs (per set, MEAN, POOLED), each
    scored image's score (to compare checkpoints on the same draws), and the images that could not
    be scored (left out of all of it)."""

    perturbation: Perturbation
    report: Report
    errors: list[tuple[str, str]] = field(default_factory=list)
    intervals: dict[str, Interval] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # path -> the score ranked by (P(generated) by default)

    def to_dict(self) -> dict:
        return {"perturbation": self.perturbation.to_dict(), **self.report.to_dict(),
                "ap_intervals": {name: interval.to_dict() for name, interval in self.intervals.items()},
                "errors": [{"path": p, "error": e} for p, e in self.errors]}


@dataclass
class Comparison:
    """Two checkpoints on the same images: each one's AP per set, their mean and pooled, and the bootstrap
    interval of the difference (candidate - baseline) on the same draws."""

    names: list[str]
    candidate: dict[str, float | None]
    baseline: dict[str, float | None]
    difference: dict[str, Interval]

    def to_dict(self) -> dict:
        return {"candidate": self.candidate, "baseline": self.baseline,
                "difference": {name: interval.to_dict() for name, interval in self.difference.items()}}


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


def branch_score(prediction: Prediction, branch: Branch) -> tuple[float | None, str | None]:
    """The score an evaluation ranks this prediction by, or why it has none."""
    if not prediction.ok:
        return None, prediction.error
    if branch is Branch.final:
        return prediction.probability, None
    if prediction.branches is None:
        return (prediction.probability, None) if branch is Branch.fused else (None, "no real-only branch")
    if branch is Branch.fused:
        return prediction.branches.fused, None
    return prediction.branches.real_only, prediction.branches.real_only_error


def branch_threshold(detector: Detector, branch: Branch) -> float:
    if branch is Branch.real_only:
        if detector.real_photo is None:
            raise ValueError(f"{detector.info.path}: this checkpoint has no real-only branch to evaluate")
        return detector.real_photo.threshold
    return detector.threshold


def evaluate(detector: Detector, sets: Sequence[ImageSet], perturbations: Sequence[Perturbation] = (Perturbation(),),
             families: Mapping[str, str] | None = None, progress: Progress | None = None,
             balanced: bool = False, branch: Branch = Branch.final) -> list[EvalResult]:
    """One result per perturbation: every image of the sets scored once (one stream, so batches span
    sets and perturbations) and summarised per set (`balanced`: class-balanced AP, for sets of one
    generator against every real). `branch` picks the score: the final probability, the fused model's,
    or the real-only branch's (its accuracies at its own threshold; images it cannot score are left out)."""
    threshold = branch_threshold(detector, branch)
    paths = unique_paths(sets)
    results = []
    for perturbation, predictions in zip(perturbations, predict_files(detector, paths, perturbations, progress)):
        found = {path: branch_score(p, branch) for path, p in zip(paths, predictions)}
        scored: dict[str, tuple[list[int], list[float]]] = {}
        for image_set in sets:
            labels, scores = scored.setdefault(image_set.name, ([], []))
            for path, label in image_set.items:
                score, _ = found[path]
                if score is not None:
                    labels.append(label)
                    scores.append(score)
        errors = [(p.path, found[path][1]) for path, p in zip(paths, predictions) if found[path][0] is None]
        by_path = {str(path): score for path, (score, _) in found.items() if score is not None}
        report = summarise(scored, threshold, families, balanced)
        results.append(EvalResult(perturbation, report, errors, _intervals(sets, by_path, balanced), by_path))
    return results


def _resampling(sets: Sequence[ImageSet], scored: set[str]) -> tuple[list[str], list[int], dict[str, list[int]]]:
    """The scored images once each (paths, labels) and, per set, the indices of its images among them."""
    paths = [str(p) for p in unique_paths(sets) if str(p) in scored]
    where = {path: i for i, path in enumerate(paths)}
    labels = [0] * len(paths)
    members = {}
    for image_set in sets:
        members[image_set.name] = [where[str(p)] for p, _ in image_set.items if str(p) in where]
        for path, label in image_set.items:
            if str(path) in where:
                labels[where[str(path)]] = label
    return paths, labels, members


def _intervals(sets: Sequence[ImageSet], scores: Mapping[str, float], balanced: bool) -> dict[str, Interval]:
    paths, labels, members = _resampling(sets, set(scores))
    return ap_intervals(labels, [scores[p] for p in paths], members, balanced)


def compare(candidate: EvalResult | Sequence[EvalResult], baseline: EvalResult | Sequence[EvalResult],
            sets: Sequence[ImageSet], balanced: bool = False) -> Comparison:
    """The candidate's APs against the baseline's on the images all of them scored, with paired intervals.
    Several results on a side (seeds of one recipe) count by the mean of each figure over them."""
    runs, bases = ([r] if isinstance(r, EvalResult) else list(r) for r in (candidate, baseline))
    both = set.intersection(*(set(run.scores) for run in runs + bases))
    paths, labels, members = _resampling(sets, both)
    a, b = [[run.scores[p] for p in paths] for run in runs], [[run.scores[p] for p in paths] for run in bases]
    difference = ap_intervals(labels, a, members, balanced, baseline=b)
    return Comparison(list(members), ap_figures(labels, a, members, balanced), ap_figures(labels, b, members, balanced),
                      difference)


def sweep_perturbations() -> list[Perturbation]:
    """JPEG 100..30, then blur 0..3 (blur 0 is the clean baseline)."""
    return [Perturbation(jpeg_quality=q) for q in JPEG_SWEEP] + [Perturbation(blur_sigma=s) for s in BLUR_SWEEP]
