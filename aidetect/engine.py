"""The inference engine behind `aidetect scan` and `from aidetect import Detector`.

It orchestrates: inputs are decoded in worker processes (decode.py), batched, moved to the device
with the chosen precision and memory layout (runtime.py), passed through the model's one forward
pass (model.py), and turned into typed results (results.py). Only global views and patches reach
the device; results stream out batch by batch in input order, so memory is bounded by the batch
size and not by the folder or the megapixels.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from .checkpoint import CheckpointInfo, load_checkpoint
from .combine import sigmoid
from .config import DEFAULT_MAX_PIXELS, PatchStrategy
from .decode import DecodeDataset, DecodedImage, Prepare
from .inputs import InputItem
from .model import FusedDetector, FusedOutput
from .psm import WINDOWS
from .provenance import decide
from .results import Box, Branches, Evidence, Prediction
from .runtime import autocast, autocast_dtype, default_workers, resolve_device
from .transforms import INPUT_SIZE, view_box

_PSM_PATCH_SIZES = [patch for _, patch, count in WINDOWS for _ in range(count)]

Input = str | os.PathLike | InputItem | Image.Image


def _as_batch(batch: list[DecodedImage]) -> list[DecodedImage]:
    return batch


class Detector:
    """A loaded checkpoint plus the machinery to run it on files and PIL images.

    >>> detector = Detector.load()              # the shipped default checkpoint
    >>> [p.probability for p in detector.predict(["photo.jpg"])]
    """

    def __init__(self, model: FusedDetector, info: CheckpointInfo, device: str = "auto", batch_size: int | None = None,
                 workers: int | None = None, threshold: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 precision: str = "auto", channels_last: bool | None = None, candidate_crops: bool = True,
                 provenance: bool = True, real_only: bool = True) -> None:
        """batch_size: default 1 on the CPU (fastest there, see the README's speed figures), 16 on
        accelerators; precision: auto (fp32 on CPU, fp16 autocast on CUDA, bf16 on MPS), fp32, bf16 or
        fp16; channels_last: NHWC tensors, default on the CPU (faster there, same probabilities);
        workers: decode processes (None: runtime.default_workers, 2 or none on a small CPU);
        candidate_crops: large images travel from the decode workers as their PSM candidate crops
        (same results, less memory); provenance: read what each file declares about its origin (C2PA,
        XMP, text chunks, EXIF) and decide each verdict with it (provenance.verdict.decide), else the
        pixels alone decide; real_only: run the checkpoint's real-only branch, when it has one (its score is
        reported per image, and enters the probability when the checkpoint's combination uses it). The
        model is moved to the device and layout in place."""
        self.device = resolve_device(device)
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else 16
        if channels_last is None:
            channels_last = self.device.type == "cpu"
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if workers is None:
            workers = default_workers(self.device)
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.autocast_dtype = autocast_dtype(self.device, precision)
        self.candidate_crops = candidate_crops
        self.provenance = provenance
        self.real_photo = info.real_photo if real_only else None
        self.combination = info.combination if self.real_photo is not None else None
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.info = info
        self.batch_size = batch_size
        self.workers = workers
        self.threshold = info.threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must lie between 0 and 1")
        self.lower_threshold = min(info.lower_threshold, self.threshold)  # below: no sign; between: uncertain
        self.max_pixels = max_pixels
        self.generator = torch.Generator().manual_seed(0)  # the "random" ablation is repeatable

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, patches: str | None = None, **options) -> "Detector":
        """Load `weights` (default: $AIDETECT_WEIGHTS, then the shipped checkpoint); `patches` swaps the
        patch strategy (psm, random, rsz448) while keeping the weights, for the paper's ablations."""
        model, info = load_checkpoint(weights, patches)
        model.backbone.fold_for_inference()  # the model is this detector's own: nothing trains or saves it
        return cls(model, info, **options)

    @property
    def channels_last(self) -> bool:
        return self.model.memory_format == torch.channels_last

    def autocast(self):
        """The precision context the model runs in."""
        return autocast(self.device, self.autocast_dtype)

    def summary(self) -> dict:
        """The checkpoint and operating point behind these results, for JSON outputs and reports."""
        info = self.info
        return {"path": str(info.path), "name": info.name, "backbone": info.config.backbone,
                "patches": info.config.patches, "threshold": self.threshold, "lower_threshold": self.lower_threshold,
                "logit_bias": info.logit_bias,
                "real_only_branch": None if self.real_photo is None else {  # the combination in use here
                    **info.real_photo_summary(), "combination": self.combination.to_dict()}}

    def predict(self, inputs: Iterable[Input]) -> list[Prediction]:
        """Predictions for every input, in order; unreadable inputs get a Prediction with `error` set."""
        return list(self.iter_predict(inputs))

    def iter_predict(self, inputs: Iterable[Input], prepare: Prepare | None = None) -> Iterator[Prediction]:
        """Stream predictions in input order, one batch at a time. `prepare(index, pixels)` changes each
        input's decoded pixels first, in the decode workers (evaluation's perturbations)."""
        for batch, _ in self._batches(list(inputs), evidence=False, prepare=prepare):
            yield from batch

    def explain(self, inputs: Iterable[Input]) -> Iterator[tuple[Prediction, Evidence | None]]:
        """Like iter_predict, with the evidence behind each prediction (None for unreadable inputs)."""
        for predictions, evidence in self._batches(list(inputs), evidence=True):
            yield from zip(predictions, evidence)

    def decoded(self, items: list, prepare: Prepare | None = None) -> Iterator[list[DecodedImage]]:
        """`items` decoded in batches, by the decode workers (in order)."""
        if not items:
            return
        cut = self.candidate_crops and self.model.config.patches == PatchStrategy.psm
        # Workers decode the next batches while the model runs on this one: with a single batch there
        # is nothing to overlap, and starting a worker would only delay the answer.
        workers = min(self.workers, math.ceil(len(items) / self.batch_size) - 1)
        yield from DataLoader(DecodeDataset(items, self.max_pixels, cut, prepare, self.provenance, self.real_photo), batch_size=self.batch_size,
                              num_workers=workers, collate_fn=_as_batch, persistent_workers=False,
                              prefetch_factor=2 if workers else None)

    def _batches(self, items: list, evidence: bool, prepare: Prepare | None = None
                 ) -> Iterator[tuple[list[Prediction], list[Evidence | None]]]:
        for batch in self.decoded(items, prepare):
            yield self.predict_decoded(batch, evidence)

    @torch.inference_mode()
    def predict_decoded(self, batch: list[DecodedImage], evidence: bool = False
                        ) -> tuple[list[Prediction], list[Evidence | None]]:
        """Predictions (and, with `evidence`, what drove them) for inputs decoded already, in order."""
        good = [d for d in batch if d.error is None]
        results = {d.index: Prediction(d.path, error=d.error, provenance=d.provenance) for d in batch if d.error is not None}
        found: dict[int, Evidence] = {}
        if good:
            views = torch.stack([d.view for d in good]).to(self.device, non_blocking=True).float().div_(255)
            with self.autocast():
                out = self.model(views, [d.source for d in good], torch.tensor([d.size for d in good]),
                                 need_weights=evidence, keep_crops=evidence, generator=self.generator)
            logits = (out.logits.float() + self.info.logit_bias).cpu().tolist()
            for i, decoded in enumerate(good):
                results[decoded.index] = self._prediction(decoded, logits[i], out, i)
                if evidence:
                    found[decoded.index] = _evidence(out, i, decoded.size)
        return [results[d.index] for d in batch], [found.get(d.index) for d in batch]

    def _prediction(self, decoded: DecodedImage, logit: float, out: FusedOutput, i: int) -> Prediction:
        height, width = decoded.size
        fused = sigmoid(logit)
        branches = None
        if self.real_photo is not None and decoded.real_only is not None:
            score, threshold = decoded.real_only.score, self.real_photo.threshold
            branches = Branches(round(fused, 6), None if score is None else round(score, 4), round(threshold, 4),
                                None if score is None else score > threshold, decoded.real_only.error)
            probability = self.combination.probability(logit, score)
        else:
            probability = fused
        boxes, scores = out.seen.boxes[i].tolist(), out.seen.scores[i].tolist()
        sizes = _PSM_PATCH_SIZES if self.model.config.patches == PatchStrategy.psm else [INPUT_SIZE] * len(boxes)
        found = [Box(left, top, right, bottom, size, None if np.isnan(score) else round(float(score), 6))
                 for (top, left, bottom, right), size, score in zip(boxes, sizes, scores)]
        probability = round(probability, 6)
        verdict = decide(decoded.provenance, probability, self.threshold, self.lower_threshold)
        return Prediction(decoded.path, probability, verdict, self.threshold, int(width), int(height), found,
                          provenance=decoded.provenance, branches=branches)


def _evidence(out: FusedOutput, i: int, size: tuple[int, int]) -> Evidence:
    crops = (out.seen.crops[i].float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    return Evidence(out.seen.activation[i].cpu().numpy(), out.attention[:, i].float().cpu().numpy(),
                    crops.cpu().numpy(), view_box(*size))

