"""The corpus's data card: what each source and generator gave, in which formats, qualities and sizes,
and whether format and size alone would tell the classes apart.

The card is computed from per-image records only (no pixels), so it can be recomputed, and the
format/size check re-run on any other set of records (aligned training samples, a re-encoded copy).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

# The IJG (libjpeg) luminance table at quality 50; quality q scales it by 5000/q (q < 50) or 200-2q percent.
IJG_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
SPLIT_ORDER = ("train", "val_in", "val_out")
CARD_NAME, CARD_TEXT_NAME = "corpus.json", "corpus.txt"  # the card, and its tables as text, in the corpus folder
FORMAT_FEATURES = ("jpeg", "png", "webp")  # one-hot; anything else is "other"


@dataclass(frozen=True)
class ImageRecord:
    """One image of the corpus, as written."""

    path: str  # relative to the corpus root
    source: str
    generator: str | None  # None for real photos
    family: str | None
    label: str  # "real" or "fake"
    split: str
    origin: str  # path in the repository, "#N" appended for the N-th cell of a grid
    licence: str
    format: str  # the repository file's format (jpeg, png, webp...): the compression the pixels went through
    written_as: str  # the corpus file's format: the same, or png for a cell cut from a grid
    width: int
    height: int
    bytes: int  # of the corpus file
    bits_per_pixel: float  # of the repository file: how hard it was compressed
    jpeg_quality: int | None  # of the repository file, estimated from its luminance quantisation table
    sha256: str  # of the decoded pixels
    phash: str  # 64-bit perceptual hash, hex


@dataclass(frozen=True)
class Skipped:
    """A file or cell left out, and why."""

    source: str
    origin: str
    reason: str  # unreadable, bad_cut, too_small, unnamed_generator, near_excluded, duplicate, near_duplicate
    detail: str  # one line
    duplicate_of: str | None = None
    distance: int | None = None  # Hamming distance of the perceptual hashes, for near duplicates


ERROR_REASONS = frozenset({"unreadable", "bad_cut"})  # problems of the copy or the manifest, not choices


def _ijg_sum(quality: int) -> int:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return sum(min(255, max(1, (value * scale + 50) // 100)) for value in IJG_LUMINANCE)


_IJG_SUMS = {quality: _ijg_sum(quality) for quality in range(1, 101)}


def jpeg_quality(quantization: Mapping[int, Sequence[int]] | None) -> int | None:
    """The IJG quality whose luminance table is closest (by its sum) to the file's table 0. Exact for
    libjpeg-made files; for cameras' own tables, the IJG quality of similar strength."""
    table = (quantization or {}).get(0)
    if table is None or len(table) != 64:
        return None
    total = sum(table)
    return min(_IJG_SUMS, key=lambda quality: (abs(_IJG_SUMS[quality] - total), -quality))


def _spread(values: Sequence[float], digits: int = 0) -> dict | None:
    if not values:
        return None
    rounded = (lambda v: round(float(v), digits)) if digits else (lambda v: int(round(float(v))))
    return {"min": rounded(min(values)), "median": rounded(np.median(values)), "max": rounded(max(values))}


def describe(records: Sequence[ImageRecord]) -> dict:
    """Counts, formats (of the files the pixels came from), JPEG qualities and sizes of a group of images."""
    qualities = [r.jpeg_quality for r in records if r.jpeg_quality is not None]
    return {
        "count": len(records),
        "formats": dict(sorted(Counter(r.format for r in records).items())),
        "jpeg_quality": {"n": len(qualities), **(_spread(qualities) or {})} if qualities else None,
        "width": _spread([r.width for r in records]),
        "height": _spread([r.height for r in records]),
        "megapixels": _spread([r.width * r.height / 1e6 for r in records], 3),
    }


def bias_features(records: Sequence[ImageRecord]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Format and size statistics of each image (no pixels), its label (1 = fake), and the feature names:
    format one-hot, JPEG quality (0 when not a JPEG), log2 width, log2 height, log2 aspect, bits per pixel
    (of the file the pixels were decoded from)."""
    names = [f"format_{f}" for f in (*FORMAT_FEATURES, "other")] + [
        "jpeg_quality", "log2_width", "log2_height", "log2_aspect", "bits_per_pixel"]
    rows = []
    for r in records:
        onehot = [float(r.format == f) for f in FORMAT_FEATURES]
        rows.append(onehot + [1.0 - sum(onehot), float(r.jpeg_quality or 0), np.log2(r.width), np.log2(r.height),
                              np.log2(r.width / r.height), r.bits_per_pixel])
    labels = np.array([r.label == "fake" for r in records], dtype=int)
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(names)), labels, names


def format_size_auc(records: Sequence[ImageRecord], folds: int = 5) -> dict:
    """Cross-validated ROC AUC (stratified, shuffled with a fixed seed) of classifiers that see only
    format and size statistics: 0.5 means they cannot tell real from fake; near 1 means a detector
    could learn the format or the size instead of the generators' traces."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels, names = bias_features(records)
    counts = {"real": int((labels == 0).sum()), "fake": int((labels == 1).sum())}
    if min(counts.values()) < folds:
        return {"images": counts, "note": f"fewer than {folds} images of a class: not measured"}
    groups = {"format and size": slice(None), "format only": slice(0, 5), "size and bits/pixel": slice(5, None)}
    folding = StratifiedKFold(folds, shuffle=True, random_state=0)

    def auc(model, columns: slice) -> float:
        scores = cross_val_predict(model, features[:, columns], labels, cv=folding, method="predict_proba")[:, 1]
        return round(float(roc_auc_score(labels, scores)), 4)

    boosting = {name: auc(GradientBoostingClassifier(random_state=0), cols) for name, cols in groups.items()}
    linear = auc(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), slice(None))
    return {"images": counts, "features": names, "folds": folds,
            "gradient_boosting_auc": boosting, "logistic_regression_auc": linear}


def read_records(corpus: str | os.PathLike, split: str | None = None) -> list[ImageRecord]:
    """The image records of a built corpus (OUT/corpus.json), of one split or all."""
    path = Path(corpus) / CARD_NAME
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the corpus's data card ({exc}); build the corpus first") from None
    names = {f.name for f in dataclasses.fields(ImageRecord)}
    return [ImageRecord(**{k: v for k, v in image.items() if k in names}) for image in card.get("images", [])
            if split is None or image.get("split") == split]


def _key(record: ImageRecord) -> tuple:
    return SPLIT_ORDER.index(record.split), record.source, record.generator or ""


def make_card(records: Sequence[ImageRecord], skipped: Sequence[Skipped], header: dict,
              bias_split: str = "train") -> dict:
    """The data card as a JSON-ready dict: `header` (manifest, sources...) then the statistics per
    group (split x source x generator), per split and class, the drops per source, and the bias check."""
    groups: dict[tuple, list[ImageRecord]] = defaultdict(list)
    by_class: dict[tuple, list[ImageRecord]] = defaultdict(list)
    for record in sorted(records, key=_key):
        groups[(record.split, record.source, record.generator)].append(record)
        by_class[(record.split, record.label)].append(record)
    dropped: dict[str, Counter] = defaultdict(Counter)
    for skip in skipped:
        dropped[skip.source][skip.reason] += 1
    families: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        families[record.split][record.family or "real"] += 1
    return {
        **header,
        "totals": {split: {label: len(by_class.get((split, label), [])) for label in ("real", "fake")}
                   for split in SPLIT_ORDER},
        "families": {split: dict(sorted(families[split].items())) for split in SPLIT_ORDER},
        "generators": {split: len({r.generator for r in records if r.split == split and r.generator})
                       for split in SPLIT_ORDER},
        "groups": [{"split": split, "source": source, "generator": generator, "family": rows[0].family,
                    "class": rows[0].label, "licence": rows[0].licence, **describe(rows)}
                   for (split, source, generator), rows in groups.items()],
        "by_class": [{"split": split, "class": label, **describe(rows)}
                     for (split, label), rows in sorted(by_class.items(), key=lambda kv: (SPLIT_ORDER.index(kv[0][0]), kv[0][1]))],
        "dropped": {source: dict(sorted(counts.items())) for source, counts in dropped.items()},
        "bias_check": {"split": bias_split, **format_size_auc([r for r in records if r.split == bias_split])},
        "skipped": [asdict(s) for s in skipped],
        "images": [asdict(r) for r in records],
    }


def write_card_text(card: dict, path) -> None:
    """The card's tables as plain text, beside corpus.json."""
    from rich.console import Console

    from ..atomic import atomic_open
    from ..render.corpus import card_tables

    with atomic_open(path, "w", encoding="utf-8") as handle:
        console = Console(file=handle, width=200, no_color=True)
        for table in card_tables(card):
            console.print(table)
