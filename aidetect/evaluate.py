"""Evaluating a checkpoint on labelled sets, clean or perturbed, and the robustness sweep.

Perturbations must hit the pixels before the detector decodes them, and the engine only takes
paths or PIL images. So files are decoded and perturbed here, in DataLoader workers, and handed
to the detector as PIL images in batches; the detector itself runs without workers of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .datasets import ImageSet
from .engine import Detector
from .images import ImageError, load_image
from .inputs import display_path
from .metrics import Report, summarise
from .perturb import BLUR_SWEEP, JPEG_SWEEP, Perturbation
from .results import Prediction

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


class _PerturbedFiles(Dataset):
    """Decodes (EXIF, RGB, size limit) and perturbs one (file, perturbation) job per item; a failure
    becomes its reason."""

    def __init__(self, jobs: Sequence[tuple[str | os.PathLike, Perturbation]], max_pixels: int) -> None:
        self.jobs = jobs
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> Image.Image | str:
        path, perturbation = self.jobs[index]
        try:
            return Image.fromarray(perturbation(load_image(path, self.max_pixels)))
        except (ImageError, ValueError) as exc:  # unreadable, or too large for the perturbation
            return str(exc)


def predict_files(detector: Detector, paths: Sequence[str | os.PathLike],
                  perturbations: Sequence[Perturbation] = (Perturbation(),), workers: int = 0,
                  progress: Progress | None = None) -> list[list[Prediction]]:
    """For each perturbation, the predictions for `paths` in order (unreadable files get `error` set).
    One DataLoader serves every perturbation, so its workers start once and batches run on across.
    Decoding happens here, so `detector`'s own workers are not used."""
    jobs = [(path, perturbation) for perturbation in perturbations for path in paths]
    loader = DataLoader(_PerturbedFiles(jobs, detector.max_pixels), batch_size=detector.batch_size,
                        num_workers=min(workers, len(jobs)), collate_fn=list)
    predictions: list[Prediction] = []
    for batch in loader:
        scored = iter(detector.predict([x for x in batch if isinstance(x, Image.Image)]))
        for item in batch:
            path = display_path(jobs[len(predictions)][0])
            ok = isinstance(item, Image.Image)
            predictions.append(replace(next(scored), path=path) if ok else Prediction(path, error=item))
        if progress:
            progress(len(batch))
    count = len(paths)
    return [predictions[i * count:(i + 1) * count] for i in range(len(perturbations))]


def evaluate(detector: Detector, sets: Sequence[ImageSet], perturbations: Sequence[Perturbation] = (Perturbation(),),
             families: Mapping[str, str] | None = None, workers: int = 0,
             progress: Progress | None = None) -> list[EvalResult]:
    """One result per perturbation: every image of every set scored (one stream, so batches span
    sets and perturbations) and summarised per set."""
    paths = [path for image_set in sets for path, _ in image_set.items]
    results = []
    for perturbation, predictions in zip(perturbations, predict_files(detector, paths, perturbations, workers, progress)):
        scored: dict[str, tuple[list[int], list[float]]] = {}
        errors: list[tuple[str, str]] = []
        stream = iter(predictions)
        for image_set in sets:
            labels, scores = scored.setdefault(image_set.name, ([], []))
            for (_, label), prediction in zip(image_set.items, stream):
                if prediction.ok:
                    labels.append(label)
                    scores.append(prediction.probability)
                else:
                    errors.append((prediction.path, prediction.error))
        results.append(EvalResult(perturbation, summarise(scored, detector.threshold, families), errors))
    return results


def sweep_perturbations() -> list[Perturbation]:
    """JPEG 100..30, then blur 0..3 (blur 0 is the clean baseline)."""
    return [Perturbation(jpeg_quality=q) for q in JPEG_SWEEP] + [Perturbation(blur_sigma=s) for s in BLUR_SWEEP]
