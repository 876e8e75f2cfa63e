"""Labelled image folders in the CNNDetection layout: `root/<set>/{0_real,1_fake}/...`.

An image's label comes from its nearest `0_real` or `1_fake` ancestor folder, so a set may nest
sub-folders (per generator, per category) below or above the label folders. Images are found the
way `scan` finds them (by extension or by content), in sorted order, so runs are repeatable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inputs import iter_inputs

REAL, FAKE = 0, 1
LABEL_FOLDERS = {"0_real": REAL, "1_fake": FAKE}


class DatasetError(Exception):
    """A folder that cannot be used as a labelled dataset; the message says why."""


@dataclass(frozen=True)
class ImageSet:
    """One evaluation set: a name (the folder's) and its labelled images."""

    name: str
    root: Path
    items: tuple[tuple[Path, int], ...]

    @property
    def n_real(self) -> int:
        return sum(1 for _, label in self.items if label == REAL)

    @property
    def n_fake(self) -> int:
        return sum(1 for _, label in self.items if label == FAKE)


def label_of(path: str | os.PathLike, root: str | os.PathLike) -> int | None:
    """0 or 1 from the nearest `0_real`/`1_fake` folder between `root` and `path`; None if there is none."""
    parents = Path(path).relative_to(root).parts[:-1]
    for part in reversed(parents):
        if part in LABEL_FOLDERS:
            return LABEL_FOLDERS[part]
    return None


def labelled_images(root: str | os.PathLike) -> list[tuple[Path, int]]:
    """Every image below `root` that has a label, as (path, label) sorted by path; 1 = fake.

    Raises DatasetError when `root` is not a folder or a folder below it cannot be listed (a
    silently skipped folder would bias the metrics)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    found = []
    for item in iter_inputs([str(root)]):
        if item.error:
            raise DatasetError(f"{item.path}: {item.error}")
        label = label_of(item.path, root)
        if label is not None:
            found.append((Path(item.path), label))
    return sorted(found)


def group_of(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """Where an image comes from, for reports per generator: for a fake, its generator (the folder right
    below its `1_fake`, else the folder above it); for a real, its source (the folder above `0_real`).
    `root/<source>/1_fake/<generator>/x.png` -> generator; `root/<set>/0_real/x.jpg` -> set."""
    parts = Path(path).relative_to(root).parts[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in LABEL_FOLDERS:
            below = parts[i + 1] if parts[i] == "1_fake" and i + 1 < len(parts) else None
            return below or (parts[i - 1] if i else Path(root).name)
    return Path(root).name


def generator_sets(root: str | os.PathLike) -> list[ImageSet]:
    """One set per generator under `root`, each its fakes against every real under `root` (sorted by name):
    the leave-generator-out view of a folder of held-out generators and held-out real sources."""
    items = labelled_images(root)
    reals = tuple(item for item in items if item[1] == REAL)
    groups: dict[str, list[tuple[Path, int]]] = {}
    for item in items:
        if item[1] == FAKE:
            groups.setdefault(group_of(item[0], root), []).append(item)
    if not reals or not groups:
        raise DatasetError(f"{root}: generator sets need real and generated images below it")
    return [ImageSet(name, Path(root), reals + tuple(fakes)) for name, fakes in sorted(groups.items())]


def epoch_indices(groups: list[list[int]], weights: list[float], seed: int, epoch: int, size: int) -> list[int]:
    """Sample order for one epoch: a permutation when roots are weighted alike, otherwise each
    sample drawn from root r with probability weight_r (uniformly inside the root)."""
    rng = np.random.default_rng([seed, epoch, 7])
    flat = [i for group in groups for i in group]
    if len(set(weights)) <= 1 and size == len(flat):
        return [flat[i] for i in rng.permutation(len(flat))]
    probs = np.asarray(weights, dtype=float) / sum(weights)
    roots = rng.choice(len(groups), size=size, p=probs)
    return [groups[r][int(rng.integers(len(groups[r])))] for r in roots]


def find_sets(root: str | os.PathLike) -> list[ImageSet]:
    """The sets under `root`: `root` itself when it holds `0_real`/`1_fake` directly, otherwise each
    child folder that contains labelled images (sorted by name)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if any((root / name).is_dir() for name in LABEL_FOLDERS):
        candidates = [root]
    else:
        candidates = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    sets = [ImageSet(folder.name, folder, tuple(items)) for folder in candidates if (items := labelled_images(folder))]
    if not sets:
        raise DatasetError(f"{root}: no images below a 0_real or 1_fake folder "
                           f"(expected ROOT/<set>/0_real/... and ROOT/<set>/1_fake/...)")
    return sets


def read_families(path: str | os.PathLike) -> dict[str, str]:
    """A JSON object mapping set names to family names (e.g. {"playground_gan": "gan"})."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the families file ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DatasetError(f"{path}: the families file must be a JSON object mapping set names to family names")
    return data
