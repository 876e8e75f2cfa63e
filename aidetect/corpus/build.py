"""`aidetect corpus build`: a training corpus rebuilt from pinned public repositories.

The build reads every source of the manifest from a local copy at its pinned commit (or clones it,
online), selects files by the manifest's entries, cuts grids and composites into their images,
drops unreadable files, exact and near duplicates (within and across sources, and of any image
under the --exclude-near roots), and writes the CNNDetection layout:

    OUT/<split>/<source>/0_real/<file>                 real photos
    OUT/<split>/<source>/1_fake/<generator>/<file>     generated images

Splits are by source: whole generators and whole real sources named `val_out` in the manifest are
held out (leave-generator-out validation); of the rest, a fixed share of each source, drawn by a hash
of the file's path, is `val_in` (in-distribution validation, reported apart); the remainder is
`train`. Files keep their bytes (the data card must see the real formats); cut cells are written as
PNG, and the card describes them by the file they were cut from (a StyleGAN2 cell is a JPEG's
pixels). The same sources give byte-identical files and the same data card (`OUT/corpus.json`, its
tables in `OUT/corpus.txt`), except its timing. The new corpus is built beside OUT and replaces it
only when complete.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from ..atomic import atomic_open
from ..images import ImageError, load_image
from ..inputs import iter_inputs
from .card import (CARD_NAME, CARD_TEXT_NAME, ERROR_REASONS, ImageRecord, Skipped, jpeg_quality, make_card,
                   write_card_text)
from .dedup import NEAR_DIFFERENCE, NEAR_DISTANCE, Fingerprint, NearIndex, fingerprint, pixel_sha256
from .grids import cut_cells
from .manifest import CutRule, Entry, Manifest, Source
from .sources import RepoFile, SourceCopy, SourceMissing, clone_source, list_files, locate_source, read_files

BATCH = 32  # files read and decoded ahead of the sequential deduplication
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif", "gif": ".gif"}
_FORMATS = {"MPO": "jpeg"}  # Pillow's name for a camera JPEG with a second picture; the first is a plain JPEG

Progress = Callable[[str, int, int], None]  # stage, done, total


class CorpusError(Exception):
    """A build that cannot start or finish; the message says why (missing sources, a bad OUT)."""


@dataclass
class CorpusReport:
    out: Path
    card: dict
    records: list[ImageRecord]
    skipped: list[Skipped]
    missing: list[str]  # sources left out by --skip-missing, one message each
    seconds: float

    @property
    def errors(self) -> list[Skipped]:
        return [s for s in self.skipped if s.reason in ERROR_REASONS]


# --- reading and analysing one file (runs in worker processes) ---


@dataclass
class _Image:
    """One image a file gives: the whole file (cell None) or one cell of a grid."""

    cell: int | None
    width: int
    height: int
    sha256: str
    fingerprint: Fingerprint
    png: bytes | None  # a cell, encoded losslessly; None: the file's own bytes are kept


@dataclass
class _Analysis:
    format: str = ""  # of the repository's file (an MPO is a camera's JPEG)
    jpeg_quality: int | None = None
    bits_per_pixel: float = 0.0  # of the repository's file
    images: list[_Image] = field(default_factory=list)
    error: str | None = None
    error_reason: str = "unreadable"


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _describe(pixels: np.ndarray, cell: int | None) -> _Image:
    return _Image(cell, pixels.shape[1], pixels.shape[0], pixel_sha256(pixels), fingerprint(pixels),
                  _png(pixels) if cell is not None else None)


def _analyse(data: bytes, suffix: str, cut: CutRule | None, path: str, scratch: str) -> _Analysis:
    """Decode a file the way `scan` does (aidetect.images), read its format and JPEG tables, cut it."""
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        try:
            pixels = load_image(handle.name)
        except ImageError as exc:
            return _Analysis(error=str(exc))
    with Image.open(io.BytesIO(data)) as image:
        analysis = _Analysis(format=_FORMATS.get(image.format, (image.format or "unknown").lower()),
                             bits_per_pixel=round(8 * len(data) / (pixels.shape[0] * pixels.shape[1]), 4))
        if analysis.format == "jpeg":
            analysis.jpeg_quality = jpeg_quality(getattr(image, "quantization", None))
    if cut is None:
        analysis.images.append(_describe(pixels, None))
        return analysis
    try:
        analysis.images = [_describe(np.ascontiguousarray(cell), index) for index, cell in cut_cells(pixels, cut, path)]
    except ValueError as exc:
        return _Analysis(error=str(exc), error_reason="bad_cut")
    return analysis


# --- planning: which files, which generator ---


@dataclass(frozen=True)
class _Planned:
    file: RepoFile
    entry: Entry
    generator: str | None


def _lookup_keys(copy: SourceCopy, files: dict[str, RepoFile], entry: Entry) -> dict[str, str]:
    """The generator rule's JSON lookup file as {key: field value}."""
    rule, source = entry.generator_from, copy.source
    file = files.get(rule.lookup)
    data = read_files(copy, [file])[0] if file else f"no such file in {source.repo}"
    try:
        if isinstance(data, str):
            raise ValueError(data)
        table = json.loads(data)
        if not isinstance(table, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise CorpusError(f"source {source.id!r}: generator lookup file {rule.lookup}: {exc}") from None
    normalise = (lambda k: re.sub(r"[^a-z0-9]", "_", k, flags=re.I).lower()) if rule.lookup_key == "lower-underscore" else str
    return {normalise(key): value.get(rule.field) for key, value in table.items() if isinstance(value, dict)}


def _plan(copy: SourceCopy) -> tuple[list[_Planned], list[Skipped]]:
    """The files of a source the manifest selects, each with its entry and generator."""
    source = copy.source
    files = list_files(copy)
    by_path = {f.path: f for f in files}
    lookups: dict[int, dict[str, str]] = {}
    planned, skipped = [], []
    for file in files:
        entry = source.entry_for(file.path)
        if entry is None:
            continue
        generator = entry.generator
        rule = entry.generator_from
        if rule is not None:
            match = rule.pattern.search(file.path)
            key = match.group(1) if match else None
            if key is not None and rule.lookup:
                if id(entry) not in lookups:
                    lookups[id(entry)] = _lookup_keys(copy, by_path, entry)
                key = lookups[id(entry)].get(key)
            generator = rule.names.get(key) if isinstance(key, str) else None
            if generator is None:
                skipped.append(Skipped(source.id, file.path, "unnamed_generator",
                                       f"no generator named for key {key!r} by the manifest"))
                continue
        planned.append(_Planned(file, entry, generator))
    return planned, skipped


# --- the build ---


def _in_val_in(source: Source, origin: str, percent: int) -> bool:
    digest = hashlib.sha256(f"{source.id}/{origin}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def output_name(path: str, cell: int | None, file_format: str) -> str:
    """A short, deterministic, unique name: the file's stem made ASCII, a hash of its whole path, the cell."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", PurePosixPath(path).stem).strip("-")[:40] or "image"
    digest = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    if cell is not None:
        return f"{stem}-{digest}-c{cell:02d}.png"
    return f"{stem}-{digest}{_EXTENSIONS.get(file_format, PurePosixPath(path).suffix.lower() or '.img')}"


def _excluded_index(roots: Sequence[Path], index: NearIndex[str], progress: Progress) -> dict[str, int]:
    """Add the fingerprints of every readable image under the --exclude-near roots to `index`."""
    counts = {}
    for root in roots:
        if not root.exists():
            raise CorpusError(f"--exclude-near {root}: no such file or folder")
        items = [item for item in iter_inputs([str(root)]) if not item.error]
        before = len(index)
        for done, item in enumerate(items, 1):
            try:
                index.add(fingerprint(load_image(item.path)), item.path)
            except ImageError:
                pass  # not an image of the corpus: nothing to guard against
            progress(f"indexing {root}", done, len(items))
        counts[str(root)] = len(index) - before
    return counts


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir()) and not (out / CARD_NAME).is_file()):
        raise CorpusError(f"{out} exists and is not a corpus built by aidetect (no {CARD_NAME}): "
                          f"choose an empty or new folder")


def _locate_all(manifest: Manifest, sources_dirs: Sequence[Path], online: bool, skip_missing: bool,
                progress: Progress) -> tuple[list[SourceCopy], list[str]]:
    copies, missing = [], []
    for done, source in enumerate(manifest.sources, 1):
        progress("locating sources", done - 1, len(manifest.sources))
        try:
            copies.append(locate_source(source, sources_dirs))
        except SourceMissing as exc:
            if not online:
                missing.append(str(exc))
                continue
            if not sources_dirs:
                raise CorpusError("--online needs a --sources directory to clone into") from None
            try:
                copies.append(clone_source(source, sources_dirs[0]))
            except SourceMissing as clone_error:
                missing.append(str(clone_error))
    if missing and not skip_missing:
        raise CorpusError("\n".join(missing) + "\n(rebuild with --skip-missing to go on without "
                          + ("it" if len(missing) == 1 else f"these {len(missing)}") + ")")
    return copies, missing


def _analysed(copy: SourceCopy, planned: list[_Planned], pool, scratch: str) -> Iterator[tuple[_Planned, bytes | None, _Analysis]]:
    """Each planned file with its bytes and analysis, in order; decoding runs BATCH files ahead in the pool."""
    for start in range(0, len(planned), BATCH):
        items = planned[start:start + BATCH]
        batch = list(zip(items, read_files(copy, [item.file for item in items])))
        jobs = [(data, PurePosixPath(item.file.path).suffix, item.entry.cut_for(item.file.path), item.file.path, scratch)
                for item, data in batch if not isinstance(data, str)]
        results = iter(pool.map(_analyse, *zip(*jobs)) if pool and jobs else [_analyse(*job) for job in jobs])
        for item, data in batch:
            if isinstance(data, str):
                yield item, None, _Analysis(error=data)
            else:
                yield item, data, next(results)


class _Deduplicator:
    """Admits the first copy of every picture: nothing too small, nothing near an image under the
    --exclude-near roots, no second copy of the same pixels, nothing near an image already admitted."""

    def __init__(self, min_side: int, excluded: NearIndex[str], near_distance: int, near_difference: float):
        self.min_side, self.excluded = min_side, excluded
        self.exact: dict[str, str] = {}
        self.near: NearIndex[str] = NearIndex(near_distance, near_difference)

    def admit(self, source: Source, origin: str, image: _Image) -> Skipped | None:
        """None when `image` is admitted (and remembered), else why it is left out."""
        if min(image.width, image.height) < self.min_side:
            return Skipped(source.id, origin, "too_small", f"{image.width}x{image.height} is under "
                           f"{self.min_side} pixels on a side")
        if match := self.excluded.find(image.fingerprint):
            return Skipped(source.id, origin, "near_excluded", f"near an image under --exclude-near "
                           f"(thumbnail difference {match.difference})", match.label, match.distance)
        if image.sha256 in self.exact:
            return Skipped(source.id, origin, "duplicate", "the same pixels as an earlier image",
                           self.exact[image.sha256], 0)
        if match := self.near.find(image.fingerprint):
            return Skipped(source.id, origin, "near_duplicate", f"near an earlier image "
                           f"(thumbnail difference {match.difference})", match.label, match.distance)
        label = f"{source.id}:{origin}"
        self.exact[image.sha256] = label
        self.near.add(image.fingerprint, label)
        return None


def build_corpus(manifest: Manifest, out: str | Path, sources_dirs: Sequence[str | Path] = (), online: bool = False,
                 skip_missing: bool = False, exclude_near: Sequence[str | Path] = (), workers: int = 0,
                 near_distance: int = NEAR_DISTANCE, near_difference: float = NEAR_DIFFERENCE,
                 progress: Progress | None = None) -> CorpusReport:
    """Build the corpus into OUT (replacing a previous corpus there) and return its report and card.
    Raises CorpusError before writing anything when a source has no copy (unless skip_missing)."""
    started = time.monotonic()
    progress = progress or (lambda stage, done, total: None)
    out, dirs = Path(out), [Path(d) for d in sources_dirs]
    _check_out(out)
    copies, missing = _locate_all(manifest, dirs, online, skip_missing, progress)
    plans = []
    for copy in copies:
        progress(f"listing {copy.source.id}", 0, 1)
        try:
            plans.append((copy, *_plan(copy)))
        except SourceMissing as exc:  # a copy whose commit cannot be listed after all
            raise CorpusError(str(exc)) from None
    excluded: NearIndex[str] = NearIndex(near_distance, near_difference)
    excluded_counts = _excluded_index([Path(r) for r in exclude_near], excluded, progress)
    dedup = _Deduplicator(manifest.min_side, excluded, near_distance, near_difference)

    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    records: list[ImageRecord] = []
    skipped: list[Skipped] = [s for _, _, early in plans for s in early]
    total, done = sum(len(planned) for _, planned, _ in plans), 0
    pool = concurrent.futures.ProcessPoolExecutor(workers) if workers > 0 else None
    try:
        with tempfile.TemporaryDirectory(dir=partial) as scratch:
            for copy, planned, _ in plans:
                for item, data, analysis in _analysed(copy, planned, pool, scratch):
                    done += 1
                    progress(f"building {copy.source.id}", done, total)
                    if analysis.error:
                        skipped.append(Skipped(copy.source.id, item.file.path, analysis.error_reason, analysis.error))
                    for image in analysis.images:
                        origin = item.file.path if image.cell is None else f"{item.file.path}#{image.cell}"
                        drop = dedup.admit(copy.source, origin, image)
                        if drop:
                            skipped.append(drop)
                        else:
                            records.append(_write(partial, manifest, copy.source, item, origin, image, data, analysis))
        card = make_card(records, skipped, _header(manifest, copies, missing, excluded_counts, near_distance,
                                                   near_difference))
        seconds = time.monotonic() - started
        card["timing"] = {"seconds": round(seconds, 1)}
        with atomic_open(partial / CARD_NAME, "w", encoding="utf-8") as handle:
            json.dump(card, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        write_card_text(card, partial / CARD_TEXT_NAME)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a half-built corpus must not stay beside OUT
        raise
    finally:
        if pool:
            pool.shutdown()
    _replace(partial, out)
    return CorpusReport(out, card, records, skipped, missing, seconds)


def _write(root: Path, manifest: Manifest, source: Source, item: _Planned, origin: str, image: _Image,
           data: bytes, analysis: _Analysis) -> ImageRecord:
    generator = manifest.generators.get(item.generator) if item.generator else None
    split = source.split if generator is None else generator.split
    if split == "train" and _in_val_in(source, origin, manifest.val_in_percent):
        split = "val_in"
    file_format = "png" if image.cell is not None else analysis.format
    folder = root / split / source.id / ("0_real" if generator is None else f"1_fake/{generator.id}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / output_name(item.file.path, image.cell, file_format)
    payload = image.png if image.png is not None else data
    target.write_bytes(payload)
    return ImageRecord(
        path=target.relative_to(root).as_posix(), source=source.id, generator=generator.id if generator else None,
        family=generator.family if generator else None, label="real" if generator is None else "fake", split=split,
        origin=origin, licence=item.entry.licence or source.licence, format=analysis.format, written_as=file_format,
        width=image.width, height=image.height, bytes=len(payload), bits_per_pixel=analysis.bits_per_pixel,
        jpeg_quality=analysis.jpeg_quality,
        sha256=image.sha256, phash=f"{image.fingerprint.phash:016x}")


def _header(manifest: Manifest, copies: list[SourceCopy], missing: list[str], excluded: dict[str, int],
            near_distance: int, near_difference: float) -> dict:
    from .. import __version__

    return {
        "manifest": str(manifest.path),
        "manifest_sha256": hashlib.sha256(manifest.path.read_bytes()).hexdigest(),
        "aidetect": __version__,
        "near_duplicates": {"phash_distance": near_distance, "thumbnail_difference": near_difference},
        "min_side": manifest.min_side,
        "val_in_percent": manifest.val_in_percent,
        "sources": [{"id": c.source.id, "repo": c.source.repo, "commit": c.source.commit, "kind": c.source.kind,
                     "split": c.source.split if c.source.kind == "real" else "per generator",
                     "licence": c.source.licence, "copy": c.kind, "location": str(c.path)} for c in copies],
        "missing_sources": missing,
        "exclude_near": excluded,
    }


def _replace(partial: Path, out: Path) -> None:
    """Put the finished corpus at OUT, removing the previous one only now."""
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
