"""Descriptors of labelled images through a frozen backbone, cached on disk.

With the backbone frozen, what it makes of an image (the global view's descriptor, the patches the
PSM picks and their descriptors) never changes. Extracting it once per image and view turns
training the heads into minutes on a CPU. Each image gets one file under CACHE/<key>/, where the
key names the backbone, its feature levels and the view recipe: an interrupted extraction resumes
where it stopped, a new image costs one extraction, and a changed recipe never mixes with an old one.

A view is what the model sees of an image: with no augmentation, the image exactly as `scan` sees
it (evaluation and selection); with augmentation, a random variant drawn from (seed, view, path),
so the same recipe gives the same descriptors on any machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..atomic import atomic_open
from ..checkpoint import CheckpointInfo
from ..config import AugmentConfig
from ..engine import Detector
from ..model import FusedDetector
from .augment import augment

CACHE_FORMAT = 1
DEFAULT_CACHE = Path(os.environ.get("AIDETECT_CACHE", Path.home() / ".cache" / "aidetect")) / "features"
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ViewRecipe:
    """How the cached views of each image are made."""

    views: int = 1
    augment: AugmentConfig | None = None  # None: the image as `scan` sees it (every view identical)
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FeatureSet:
    """Cached descriptors of labelled images: N images, V views, P patches, D numbers per descriptor.
    Unreadable images are left out and listed in `errors`."""

    paths: list[str]
    labels: np.ndarray  # N, 0 = real, 1 = generated
    global_: np.ndarray  # N x V x D, float16
    patches: np.ndarray  # N x V x P x D, float16
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: Sequence[int] | np.ndarray) -> "FeatureSet":
        index = np.asarray(index, dtype=np.int64)
        return FeatureSet([self.paths[i] for i in index], self.labels[index], self.global_[index], self.patches[index])


def weights_digest(module: torch.nn.Module) -> str:
    """A digest of a module's weights and buffers: what a backbone makes of an image depends on them
    (ImageNet weights, or a fine-tuned or --init checkpoint's), not only on its name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_key(model: FusedDetector, recipe: ViewRecipe) -> str:
    """What the descriptors depend on: the backbone, its weights and levels, the patch strategy, and how
    views are drawn (not how many: view k is the same whatever the count, so more views extend a cache)."""
    drawn = {k: v for k, v in recipe.to_dict().items() if k != "views"}
    what = {"format": CACHE_FORMAT, "model": {k: v for k, v in model.config.to_dict().items()
                                               if k in ("backbone", "features", "patches")},
            "weights": weights_digest(model.backbone), "views": drawn}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _file_key(path: str, view: int) -> str:
    """One view's cache name: the image's real path (a link to it is the same image), size and
    modification time (a changed file is described again), and the view."""
    stat = os.stat(path)
    text = f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return f"{hashlib.sha256(os.fsencode(text)).hexdigest()[:32]}-v{view}"


def view_rng(seed: int, view: int, path: str) -> np.random.Generator:
    """The random draws of view `view` of the image at `path`: from the seed, the view and the image's real path."""
    return np.random.default_rng([seed, view, zlib.crc32(os.fsencode(os.path.realpath(path)))])


class _Views:
    """The decode workers' `prepare` hook: job i is view `views[i]` of `paths[i]`, augmented from
    (seed, view, crc32 of the path); a class so that it pickles for spawned workers."""

    def __init__(self, jobs: list[tuple[str, int]], recipe: ViewRecipe) -> None:
        self.jobs = jobs
        self.recipe = recipe

    def __call__(self, index: int, pixels: np.ndarray) -> np.ndarray:
        if self.recipe.augment is None:
            return pixels
        path, view = self.jobs[index]
        return augment(pixels, view_rng(self.recipe.seed, view, path), self.recipe.augment)


def extract(model: FusedDetector, samples: Sequence[tuple[str | os.PathLike, int]], recipe: ViewRecipe,
            cache: str | os.PathLike | None = DEFAULT_CACHE, device: str = "auto", workers: int | None = None,
            progress: Progress | None = None) -> FeatureSet:
    """Descriptors of every sample (path, label) under every view of `recipe`, from the cache where it has
    them and from `model`'s frozen backbone otherwise (then stored). `progress` hears each view done.
    An image with a view that cannot be made (unreadable) is left out, with its reason in `errors`."""
    paths = [os.fspath(path) for path, _ in samples]
    folder = Path(cache) / cache_key(model, recipe) if cache else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / "recipe.json", "w", encoding="utf-8") as handle:
            json.dump({"model": model.config.to_dict(), "recipe": recipe.to_dict()}, handle, indent=1)
    jobs = [(path, view) for path in dict.fromkeys(paths) for view in range(recipe.views)]
    found: dict[tuple[str, int], tuple[np.ndarray, np.ndarray] | str] = {}
    for job in jobs:
        stored = _read(folder, *job) if folder else None
        if stored is not None:
            found[job] = stored
            if progress:
                progress(1)
    missing = [job for job in jobs if job not in found]
    if missing:
        for job, result in _describe(model, missing, recipe, device, workers):
            found[job] = result
            if folder:
                _write(folder, *job, result)
            if progress:
                progress(1)
    failed = {path: result for (path, _), result in found.items() if isinstance(result, str)}
    kept = [(path, label) for path, (_, label) in zip(paths, samples) if path not in failed]
    views = [[found[(path, view)] for view in range(recipe.views)] for path, _ in kept]
    dim = model.descriptor_dim
    global_ = np.stack([[g for g, _ in v] for v in views]) if kept else np.zeros((0, recipe.views, dim), np.float16)
    patches = np.stack([[p for _, p in v] for v in views]) if kept else np.zeros((0, recipe.views, 0, dim), np.float16)
    return FeatureSet([p for p, _ in kept], np.array([label for _, label in kept], np.int64), global_, patches,
                      [(path, failed[path]) for path in paths if path in failed])


def _read(folder: Path, path: str, view: int) -> tuple[np.ndarray, np.ndarray] | str | None:
    """A stored view: its descriptors, or the reason it could not be made; None if not stored (or unreadable)."""
    try:
        name = folder / _file_key(path, view)
    except OSError:
        return None
    try:
        if name.with_suffix(".err").exists():
            return name.with_suffix(".err").read_text(encoding="utf-8")
        with np.load(name.with_suffix(".npz")) as stored:
            return stored["global"], stored["patches"]
    except (OSError, ValueError, KeyError):
        return None


def _write(folder: Path, path: str, view: int, result: tuple[np.ndarray, np.ndarray] | str) -> None:
    name = folder / _file_key(path, view)
    if isinstance(result, str):
        with atomic_open(name.with_suffix(".err"), "w", encoding="utf-8") as handle:
            handle.write(result)
        return
    with atomic_open(name.with_suffix(".npz"), "wb") as handle:
        np.savez(handle, **{"global": result[0], "patches": result[1]})


def _describe(model: FusedDetector, jobs: list[tuple[str, int]], recipe: ViewRecipe, device: str, workers: int | None):
    """Yield ((path, view), (global D, patches P x D) float16) or ((path, view), reason), view by view."""
    info = CheckpointInfo(Path("<features>"), model.config, {})
    detector = Detector(model, info, device=device, workers=workers, provenance=False)
    generator = torch.Generator().manual_seed(recipe.seed)  # the "random" patch ablation repeats too
    for batch in detector.decoded([path for path, _ in jobs], _Views(jobs, recipe)):
        good = [d for d in batch if d.error is None]
        if good:
            views = torch.stack([d.view for d in good]).to(detector.device).float().div_(255)
            with torch.inference_mode(), detector.autocast():
                described = model.descriptors(views, [d.source for d in good], torch.tensor([d.size for d in good]),
                                              generator=generator)
            position = {d.index: i for i, d in enumerate(good)}
        for decoded in batch:
            if decoded.error is not None:
                yield jobs[decoded.index], decoded.error
                continue
            i = position[decoded.index]
            yield jobs[decoded.index], (described.global_[i].float().cpu().numpy().astype(np.float16),
                                        described.patches[i].float().cpu().numpy().astype(np.float16))
