"""`aidetect bench`: how fast the detector runs here, and where the time goes.

Seven backbone passes per image (one global view, six patches) are the floor: everything around
them (decoding, patch selection, cropping, fusion) should be nearly free. The quick run (the
default) measures that floor, the fused model on tensors already in memory (the overhead ratio is
floor time / fused time, 1.0 = free) and a scan of a generated JPEG folder through `Detector` with
its decode workers (throughput, its ratio to the fused rate, and peak memory of the process tree),
all at the engine's own defaults. The full run (`BenchConfig.full`) adds more image sizes, the
gain of batching and whole-image decoding; optional CPU speed-ups (channels-last, bf16 autocast)
report their largest probability change on real images. Random weights are fine for speed; pass a
checkpoint to check a speed-up against the real model.
"""

from __future__ import annotations

import copy
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..checkpoint import CheckpointInfo, load_checkpoint
from ..config import BenchConfig, ModelConfig
from ..decode import DecodedImage
from ..engine import Detector
from ..images import load_image
from ..inputs import iter_inputs
from ..model import FusedDetector
from ..provenance import read_provenance
from ..psm import NUM_PATCHES
from ..results import Prediction
from ..transforms import INPUT_SIZE

MIN_TIMED_IMAGES = 8


@dataclass
class Rate:
    """Images per second: median over repeats, and the slowest and fastest repeat."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, images: int, seconds: list[float]) -> "Rate":
        return cls(images / statistics.median(seconds), images / max(seconds), images / min(seconds))


@dataclass
class EndToEnd:
    size: int
    images: int
    path: str  # "auto": large images as candidate crops; "whole": every image sent whole
    rate: Rate
    fused_ratio: float  # scan rate / the fused model's rate at the same batch size: 1.0 = decoding is free
    peak_rss_mb: float | None  # process tree, DataLoader workers included: sum of RSS (a ceiling)
    peak_pss_mb: float | None  # the same as PSS: the tree's real footprint
    provenance_share: float | None  # time reading the files' provenance / the scan's time (None: not read)
    real_only_share: float | None = None  # time the real-only branch scores the decoded images / the scan's time


@dataclass
class Batching:
    batch: int
    rate: Rate
    speedup: float  # over the smallest batch measured (1 by default: one by one)


@dataclass
class Variant:
    name: str
    dtype: str
    channels_last: bool
    rate: Rate
    speedup: float  # over fp32 NCHW
    max_probability_diff: float | None  # over --check-dir, against fp32 NCHW
    checked: int


@dataclass
class Environment:
    device: str
    device_name: str
    dtype: str
    channels_last: bool
    torch: str
    threads: int
    interop_threads: int
    cpus: int | None
    python: str
    workers: int  # decode workers of the end-to-end scans


@dataclass
class BenchReport:
    config: BenchConfig
    environment: Environment
    batch_size: int  # what the engine ran at (the config's, or the engine's default for the device)
    backbone: Rate  # 7 x batch 224-px passes, per image
    fused: Rate  # the whole model on in-memory tensors
    overhead_ratio: float  # backbone time / fused time (1.0: everything else is free)
    baseline_rss_mb: float | None  # the process tree before the scans
    baseline_pss_mb: float | None
    end_to_end: list[EndToEnd] = field(default_factory=list)
    batching: list[Batching] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)


@dataclass
class Memory:
    """Memory of a process tree: the sum of RSS, a ceiling (forked workers share pages with their
    parent, counted once per process), and of PSS, shared pages split between their users: the
    tree's real footprint (None where the kernel has no smaps_rollup, before Linux 4.14)."""

    rss: int
    pss: int | None

    def max(self, other: "Memory") -> "Memory":
        pss = None if self.pss is None or other.pss is None else max(self.pss, other.pss)
        return Memory(max(self.rss, other.rss), pss)


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def _process_memory(pid: int) -> Memory:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            fields = dict(line.split(b":", 1) for line in handle.read().splitlines()[1:])
        return Memory(int(fields[b"Rss"].split()[0]) * 1024, int(fields[b"Pss"].split()[0]) * 1024)
    except FileNotFoundError:
        if os.path.exists(f"/proc/{pid}"):  # an older kernel: RSS only
            with open(f"/proc/{pid}/statm", "rb") as handle:
                return Memory(int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), None)
        raise


def tree_memory() -> Memory | None:
    """This process and all its descendants, now (None without /proc)."""
    if not os.path.exists("/proc/self/stat"):
        return None
    total = Memory(0, 0)
    for pid in _descendants(os.getpid()):
        try:
            one = _process_memory(pid)
        except (OSError, KeyError, IndexError, ValueError):
            continue  # it ended between the listing and now
        total = Memory(total.rss + one.rss, None if one.pss is None or total.pss is None else total.pss + one.pss)
    return total


class PeakMemory:
    """The peak of `tree_memory()` while the block runs, sampled in a thread (DataLoader workers included)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = tree_memory()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = self.peak.max(tree_memory())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.peak is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.peak is not None:
            self._stop.set()
            self._thread.join()
            self.peak = self.peak.max(tree_memory())


def _mb(nbytes: int | None) -> float | None:
    return None if nbytes is None else round(nbytes / 2**20, 1)


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None], warmup: bool = True) -> list[float]:
    """Wall seconds of `repeats` calls (after one untimed call when `warmup`)."""
    if warmup:
        fn()
    seconds = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


def photo_like(size: int, seed: int) -> np.ndarray:
    """A size x size RGB image that compresses like a photo: smooth colour fields plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (size // 64 + 2, size // 64 + 2, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def make_jpeg_folder(root: Path, size: int, count: int, distinct: int = 4) -> list[Path]:
    """`count` JPEGs (q90) of size x size; a few distinct ones, copied, since only their decoding cost matters."""
    folder = root / f"{size}px"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.jpg"
        if i < distinct:
            Image.fromarray(photo_like(size, seed=i)).save(path, quality=90)
        else:
            shutil.copyfile(paths[i % distinct], path)
        paths.append(path)
    return paths


def ready_items(count: int, size: int) -> list[DecodedImage]:
    """Decoded inputs as the engine receives them (global view + full-resolution pixels), in memory."""
    rng = np.random.default_rng(0)
    return [DecodedImage.of(i, f"<ready {i}>", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for i in range(count)]


def load_model(config: BenchConfig) -> tuple[FusedDetector, CheckpointInfo]:
    """The checkpoint, or the backbone with seeded random weights (no download)."""
    if config.weights:
        return load_checkpoint(config.weights)
    torch.manual_seed(0)
    model = FusedDetector(ModelConfig(backbone=config.backbone)).eval()
    return model, CheckpointInfo(Path("<random weights>"), model.config, {"threshold": 0.5})


def build_detector(config: BenchConfig, model: FusedDetector, info: CheckpointInfo, **options) -> Detector:
    """A Detector on its own copy of `model` (variants change its memory format, never the baseline's),
    folded as `Detector.load` folds it, with the engine's defaults for the device unless the config or
    `options` say otherwise."""
    model = copy.deepcopy(model)
    model.backbone.fold_for_inference()
    return Detector(model, info, device=config.device, batch_size=config.batch_size, workers=config.workers,
                    **options)


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def backbone_rate(detector: Detector, batch: int, images: int, repeats: int) -> Rate:
    """The floor: the backbone alone on `batch` global views and 6 x `batch` patches, all 224 px, as many
    times as `images` takes."""
    generator = torch.Generator().manual_seed(0)
    views = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=generator).to(detector.device)
    crops = torch.rand(batch * NUM_PATCHES, 3, INPUT_SIZE, INPUT_SIZE, generator=generator).to(detector.device)

    @torch.inference_mode()
    def run() -> None:
        with detector.autocast():
            for _ in range(images // batch):
                detector.model.describe(views)
                detector.model.describe(crops)

    return Rate.of(images // batch * batch, timed(run, repeats, _sync(detector.device)))


def _fused_pass(detector: Detector, items: list[DecodedImage], batch: int) -> Callable[[], None]:
    def run() -> None:
        for start in range(0, len(items), batch):
            detector.predict_decoded(items[start:start + batch])

    return run


def fused_rate(detector: Detector, items: list[DecodedImage], batch: int, repeats: int) -> Rate:
    """The whole model (PSM, crops, local pass, fusion, results) on in-memory inputs, `batch` at a time."""
    return Rate.of(len(items), timed(_fused_pass(detector, items, batch), repeats, _sync(detector.device)))


def end_to_end(detector: Detector, paths: list[Path], size: int, path: str, repeats: int,
               reference: list[DecodedImage]) -> EndToEnd:
    """Files to results through `Detector.predict` (decode workers included), then peak memory in one more
    pass: sampling the process tree's memory costs CPU, so it never runs while the scan is timed. Each
    timed scan follows a pass of the fused model over `reference` (in memory), and the ratio to the fused
    rate is the median of those pairs: a shared CPU's speed drifts between measurements taken apart."""
    sync = _sync(detector.device)
    fused = _fused_pass(detector, reference, detector.batch_size)
    seconds, ratios = [], []
    for _ in range(repeats):
        fused_seconds = timed(fused, 1, sync, warmup=False)[0]
        seconds += timed(lambda: detector.predict(paths), 1, sync, warmup=False)
        ratios.append(len(paths) / seconds[-1] / (len(reference) / fused_seconds))
    with PeakMemory() as memory:
        detector.predict(paths)
    rate, peak = Rate.of(len(paths), seconds), memory.peak
    share = real_only = None
    if detector.provenance:  # part of every scan above; timed alone, it is too small to see in their spread
        reading = timed(lambda: [read_provenance(p) for p in paths], repeats, lambda: None)
        share = statistics.median(reading) / statistics.median(seconds)
    if detector.real_photo is not None:  # part of every scan too (in the decode workers, when there are any)
        pixels = [load_image(p) for p in paths]
        scoring = timed(lambda: [detector.real_photo.score(x) for x in pixels], repeats, lambda: None)
        real_only = statistics.median(scoring) / statistics.median(seconds)
    return EndToEnd(size, len(paths), path, rate, statistics.median(ratios), _mb(peak and peak.rss),
                    _mb(peak and peak.pss), share, real_only)


def max_probability_diff(baseline: list[Prediction], variant: Detector, paths: list[str]) -> float | None:
    """Largest |p_variant - p_baseline| over the readable images (probabilities are rounded to 1e-6)."""
    pairs = [(a.probability, b.probability) for a, b in zip(baseline, variant.predict(paths)) if a.ok and b.ok]
    return max((abs(a - b) for a, b in pairs), default=None)


def environment(detector: Detector) -> Environment:
    device = detector.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    dtype = detector.autocast_dtype or torch.float32
    return Environment(str(device), name, str(dtype).replace("torch.", ""), detector.channels_last, torch.__version__,
                       torch.get_num_threads(),
                       torch.get_num_interop_threads(), os.cpu_count(), platform.python_version(),
                       detector.workers)


def variants_wanted(config: BenchConfig) -> list[tuple[str, bool, bool]]:
    """(name, channels_last, bf16) of each speed-up asked for, and their combination."""
    wanted = []
    if config.channels_last:
        wanted.append(("channels-last", True, False))
    if config.bf16:
        wanted.append(("bf16", False, True))
    if config.channels_last and config.bf16:
        wanted.append(("channels-last + bf16", True, True))
    return wanted


def run_bench(config: BenchConfig, on_stage: Callable[[str], None] = lambda stage: None) -> BenchReport:
    """Every measurement of the report, in order; `on_stage` hears what is being measured."""
    if config.threads:
        torch.set_num_threads(config.threads)
    model, info = load_model(config)
    detector = build_detector(config, model, info)
    repeats, batch = config.repeats, detector.batch_size
    baseline = tree_memory()

    on_stage(f"backbone alone, batch {batch}")
    timed_images = max(batch, MIN_TIMED_IMAGES)  # a single image at batch 1 times too little to be steady
    floor = backbone_rate(detector, batch, timed_images, repeats)
    on_stage(f"fused model on in-memory {config.ready_size} px images, batch {batch}")
    pool = ready_items(max((timed_images, *config.batches)), config.ready_size)
    fused = fused_rate(detector, pool[:timed_images], batch, repeats)
    report = BenchReport(config, environment(detector), batch, floor, fused, fused.median / floor.median,
                         _mb(baseline and baseline.rss), _mb(baseline and baseline.pss))

    with tempfile.TemporaryDirectory(prefix="aidetect-bench-") as tmp:
        for size in config.sizes:
            on_stage(f"generating {config.images} JPEGs of {size} px")
            paths = make_jpeg_folder(Path(tmp), size, config.images)
            on_stage(f"end-to-end scan, {size} px, {detector.workers} decode workers")
            report.end_to_end.append(end_to_end(detector, paths, size, "auto", repeats, pool[:timed_images]))
            if config.whole_images and size == max(config.sizes) and detector.model.config.patches == "psm":
                on_stage(f"end-to-end scan, {size} px, whole images from the workers")
                whole = build_detector(config, model, info, candidate_crops=False)
                report.end_to_end.append(end_to_end(whole, paths, size, "whole", repeats, pool[:timed_images]))
            shutil.rmtree(paths[0].parent)

    smallest = None
    for size in sorted(config.batches):
        on_stage(f"batch {size} vs the smallest")
        rate = fused_rate(detector, pool[:max(config.batches)], size, repeats)
        smallest = smallest or rate
        report.batching.append(Batching(size, rate, rate.median / smallest.median))

    wanted = variants_wanted(config)
    if wanted:  # against fp32 NCHW, whatever the engine's defaults
        on_stage("fp32 NCHW reference for the variants")
        reference = build_detector(config, model, info, channels_last=False)
        reference_rate = fused_rate(reference, pool[:timed_images], batch, repeats)
        check = [item.path for item in iter_inputs([config.check_dir])] if config.check_dir else []
        reference_predictions = reference.predict(check)
    for name, channels_last, bf16 in wanted:
        on_stage(f"variant {name}")
        variant = build_detector(config, model, info, channels_last=channels_last, precision="bf16" if bf16 else "auto")
        rate = fused_rate(variant, pool[:timed_images], batch, repeats)
        diff = max_probability_diff(reference_predictions, variant, check) if check else None
        dtype = str(variant.autocast_dtype or torch.float32).replace("torch.", "")
        report.variants.append(Variant(name, dtype, channels_last, rate, rate.median / reference_rate.median, diff,
                                       len(check)))
    return report
