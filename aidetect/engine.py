"""The inference engine behind `aidetect scan` and `from aidetect import Detector`.

Data flow: items -> decode in worker processes (EXIF, RGB, size check, 224 global view; for a
large image, every patch the PSM could pick, cut at native resolution, instead of its pixels) ->
batch of global views to the device -> feature map -> patch boxes -> the chosen native crops to
the device, resized there in one call per crop shape -> local pass -> fusion -> probability. Only
global views and crops reach the device; results stream out batch by batch in input order, so
memory is bounded by the batch size and not by the folder or the megapixels.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from .checkpoint import CheckpointInfo, load_checkpoint
from .images import DEFAULT_MAX_PIXELS, ImageError, load_image, to_rgb_array
from .inputs import InputItem, display_path
from .model import FEATURE_SIZE, INPUT_SIZE, FusedDetector, activation_of, cut_boxes, resize_patches
from .psm import WINDOWS, candidate_boxes

REAL, GENERATED = "real", "generated"
_PATCH_SIZES = [patch for _, patch, count in WINDOWS for _ in range(count)]


@dataclass
class Box:
    """A selected patch in original-image pixels (x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    size: int
    score: float | None


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


_MAX_VIEW_ASPECT = 32  # a longer side beyond 32 shorter sides is trimmed before the resize


def global_view(pixels: torch.Tensor) -> torch.Tensor:
    """The global branch's input: shorter side to 224 (bilinear, antialiased), centre 224 crop; uint8 3x224x224.

    A strip (a 1 x 20000 image) would resize to 224 x 4.5 million pixels first; its central band of
    32:1 holds the centre crop, so only that band is resized and memory stays bounded."""
    height, width = pixels.shape[-2:]
    keep = _MAX_VIEW_ASPECT * min(height, width)
    if max(height, width) > keep:
        pixels = TF.center_crop(pixels, [min(height, keep), min(width, keep)])
    view = TF.resize(pixels, INPUT_SIZE, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(view, [INPUT_SIZE, INPUT_SIZE])


_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32). auto keeps CPUs exact."""
    if precision == "auto":
        return None if device.type == "cpu" else torch.float16 if device.type == "cuda" else torch.bfloat16
    if precision not in _PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose auto, {', '.join(_PRECISIONS)}")
    return _PRECISIONS[precision]


def resolve_device(device: str = "auto") -> torch.device:
    """auto picks cuda, then mps, then cpu; anything else is passed to torch.device (errors are ValueError)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available")
    return resolved


# What the candidate crops of one image weigh (uint8): 25 x 224² + 36 x 112² pixels, 5.1 MB.
_CANDIDATE_BYTES = sum((FEATURE_SIZE - window + 1) ** 2 * 3 * patch * patch for window, patch, _ in WINDOWS)


@dataclass
class _Candidates:
    """Every patch the PSM may pick for one image, cut at native resolution in the decode worker.

    The boxes depend only on the image size, so they can be cut before the model runs; for a large
    image they weigh far less than its pixels (5.1 MB against 48 MB at 4000 x 4000), so they, not the
    image, cross from the worker to the main process, which then takes the 6 chosen ones."""

    boxes: list[torch.Tensor]  # per PSM window size: K x 4 [top, left, bottom, right]
    crops: list[torch.Tensor]  # per PSM window size: K x patch x patch x 3 uint8 (the decoder's layout)

    @classmethod
    def cut(cls, array: np.ndarray) -> "_Candidates":
        """From H x W x 3 pixels; numpy copies the rows (a few ms), where torch.stack over strided views
        can take half a second on a busy CPU."""
        boxes = candidate_boxes(array.shape[:2], (FEATURE_SIZE, FEATURE_SIZE))
        crops = [np.stack([array[top:bottom, left:right] for top, left, bottom, right in group.tolist()])
                 for group in boxes]
        return cls(boxes, [torch.from_numpy(group) for group in crops])

    def pick(self, boxes: list[list[int]]) -> list[torch.Tensor]:
        """The chosen crops as 3 x patch x patch views."""
        where = {tuple(box): (g, k) for g, group in enumerate(self.boxes) for k, box in enumerate(group.tolist())}
        return [self.crops[g][k].permute(2, 0, 1) for g, k in (where[tuple(box)] for box in boxes)]


@dataclass
class _Decoded:
    """One decoded input: its global view and either its pixels or its candidate crops."""

    index: int
    path: str
    size: tuple[int, int] = (0, 0)  # H, W
    view: torch.Tensor | None = None
    pixels: torch.Tensor | None = None
    candidates: _Candidates | None = None
    error: str | None = None

    def native_crops(self, boxes: list[list[int]]) -> list[torch.Tensor]:
        return self.candidates.pick(boxes) if self.candidates is not None else cut_boxes(self.pixels, boxes)


class _DecodeDataset(Dataset):
    """Decodes one input per item; runs inside DataLoader worker processes.

    With `cut_candidates` (PSM models), an image whose candidate crops weigh less than its pixels
    is sent as those crops: a worker's output stays near 5 MB per image whatever the megapixels."""

    def __init__(self, items: Sequence[InputItem | Image.Image | str], max_pixels: int,
                 cut_candidates: bool = False) -> None:
        self.items = items
        self.max_pixels = max_pixels
        self.cut_candidates = cut_candidates

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Decoded:
        item = self.items[index]
        if isinstance(item, Image.Image):
            name = display_path(getattr(item, "filename", "")) or f"<image {index}>"
            decode = lambda: to_rgb_array(item, self.max_pixels)  # noqa: E731
        else:
            item = item if isinstance(item, InputItem) else InputItem(os.fspath(item))
            name = display_path(item.path)
            if item.error:
                return _Decoded(index, name, error=item.error)
            decode = lambda: load_image(item.path, self.max_pixels)  # noqa: E731
        try:
            array = decode()
        except ImageError as exc:
            return _Decoded(index, name, error=str(exc))
        # 3 x H x W over H x W x 3 memory, no copy: the uint8 antialiased resize is fastest on this layout
        pixels = torch.from_numpy(array).permute(2, 0, 1)
        size = (array.shape[0], array.shape[1])
        if self.cut_candidates and min(size) >= INPUT_SIZE and _CANDIDATE_BYTES < array.size:
            return _Decoded(index, name, size, global_view(pixels), candidates=_Candidates.cut(array))
        return _Decoded(index, name, size, global_view(pixels), pixels)


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


def view_box(height: int, width: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the central square that the global view shows."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return left, top, left + side, top + side


def _as_batch(batch: list[_Decoded]) -> list[_Decoded]:
    return batch


class Detector:
    """A loaded checkpoint plus the machinery to run it on files and PIL images.

    >>> detector = Detector.load()              # the shipped default checkpoint
    >>> [p.probability for p in detector.predict(["photo.jpg"])]
    """

    def __init__(self, model: FusedDetector, info: CheckpointInfo, device: str = "auto", batch_size: int | None = None,
                 workers: int = 0, threshold: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 precision: str = "auto", channels_last: bool | None = None, candidate_crops: bool = True) -> None:
        """batch_size: default 1 on the CPU, 16 on accelerators (on a 2-core CPU `aidetect bench` measured
        batch 1 at 2.6x the throughput of batch 16); precision: auto (fp32 on CPU, fp16 autocast on CUDA,
        bf16 on MPS), fp32, bf16 or fp16; channels_last: NHWC tensors, default on the CPU (measured 1.5x,
        probabilities within 1e-6 of NCHW); candidate_crops: large images travel from the decode workers
        as their PSM candidate crops (same results, less memory)."""
        self.device = resolve_device(device)
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else 16
        if channels_last is None:
            channels_last = self.device.type == "cpu"
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.autocast_dtype = autocast_dtype(self.device, precision)
        self.channels_last = channels_last
        self.candidate_crops = candidate_crops
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.info = info
        self.batch_size = batch_size
        self.workers = workers
        self.threshold = info.threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must lie between 0 and 1")
        self.max_pixels = max_pixels
        self.generator = torch.Generator().manual_seed(0)  # the "random" ablation is repeatable

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, **options) -> "Detector":
        """Load `weights` (default: --weights, $AIDETECT_WEIGHTS, then the shipped checkpoint)."""
        model, info = load_checkpoint(weights)
        return cls(model, info, **options)

    def predict(self, inputs: Iterable[str | os.PathLike | InputItem | Image.Image]) -> list[Prediction]:
        """Predictions for every input, in order; unreadable inputs get a Prediction with `error` set."""
        return list(self.iter_predict(inputs))

    def iter_predict(self, inputs: Iterable[str | os.PathLike | InputItem | Image.Image]) -> Iterator[Prediction]:
        """Stream predictions in input order, one batch at a time."""
        for batch, _ in self._batches(list(inputs), evidence=False):
            yield from batch

    def explain(self, inputs: Iterable[str | os.PathLike | InputItem | Image.Image]
                ) -> Iterator[tuple[Prediction, Evidence | None]]:
        """Like iter_predict, with the evidence behind each prediction (None for unreadable inputs)."""
        for predictions, evidence in self._batches(list(inputs), evidence=True):
            yield from zip(predictions, evidence)

    def _batches(self, items: list, evidence: bool) -> Iterator[tuple[list[Prediction], list[Evidence | None]]]:
        if not items:
            return
        cut = self.candidate_crops and self.model.config.patches == "psm"
        loader = DataLoader(_DecodeDataset(items, self.max_pixels, cut), batch_size=self.batch_size,
                            num_workers=min(self.workers, len(items)), collate_fn=_as_batch,
                            persistent_workers=False, prefetch_factor=2 if self.workers else None)
        for batch in loader:
            yield self.predict_decoded(batch, evidence)

    @torch.inference_mode()
    def predict_decoded(self, batch: list[_Decoded], evidence: bool = False
                        ) -> tuple[list[Prediction], list[Evidence | None]]:
        good = [d for d in batch if d.error is None]
        results = {d.index: Prediction(d.path, error=d.error) for d in batch if d.error is not None}
        extras: dict[int, Evidence] = {}
        if good:
            probabilities, boxes, scores, found = self._forward(good, evidence)
            for i, (decoded, prob, image_boxes, image_scores) in enumerate(zip(good, probabilities, boxes, scores)):
                results[decoded.index] = self._prediction(decoded, prob, image_boxes, image_scores)
                if evidence:
                    extras[decoded.index] = Evidence(found["activation"][i], found["attention"][:, i],
                                                     found["crops"][i], view_box(*decoded.size))
        return [results[d.index] for d in batch], [extras.get(d.index) for d in batch]

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _layout(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def _forward(self, good: list[_Decoded], evidence: bool = False) -> tuple[list[float], list[list], list[list], dict]:
        model = self.model
        views = torch.stack([d.view for d in good]).to(self.device, non_blocking=True).float().div_(255)
        sizes = torch.tensor([d.size for d in good])
        with self._autocast():
            fm = model.features(self._layout(views))
        boxes, scores = model.select(fm.float(), sizes, self.generator)
        crops = resize_patches([d.native_crops(b) for d, b in zip(good, boxes.tolist())], self.device)
        n, p = crops.shape[:2]
        with self._autocast():
            local = model.features(self._layout(crops.flatten(0, 1)))
            logits, attention = model.fuse(model.embed(fm), model.embed(local).view(n, p, -1), need_weights=evidence)
        logits = logits.float() + self.info.logit_bias
        found = {}
        if evidence:
            found = {"activation": activation_of(fm).cpu().numpy(), "attention": attention.float().cpu().numpy(),
                     "crops": (crops.clamp(0, 1) * 255).round().byte().permute(0, 1, 3, 4, 2).cpu().numpy()}
        return torch.sigmoid(logits).cpu().tolist(), boxes.tolist(), scores.tolist(), found

    def _prediction(self, decoded: _Decoded, probability: float, boxes: list, scores: list) -> Prediction:
        height, width = decoded.size
        patch_sizes = _PATCH_SIZES if self.model.config.patches == "psm" else [INPUT_SIZE] * len(boxes)
        out = [Box(left, top, right, bottom, size, None if np.isnan(score) else round(float(score), 6))
               for (top, left, bottom, right), size, score in zip(boxes, patch_sizes, scores)]
        verdict = GENERATED if probability >= self.threshold else REAL
        return Prediction(decoded.path, round(probability, 6), verdict, self.threshold, int(width), int(height), out)
