"""Commands that run a checkpoint on images: `scan`, `explain` and `info`."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, TextIO

import typer

from ..atomic import atomic_open
from ..config import DEFAULT_MAX_PIXELS, OutputFormat
from ..results import LABELS
from .common import (EXIT_SOME_FAILED, BatchSize, Device, MaxPixels, Paths, ReadProvenance, Recursive, RunRealOnly, ShowProgress,
                     Threshold, Weights, Workers, fail, find_inputs, finish, load_detector, make_folder, note, out,
                     with_progress)

if TYPE_CHECKING:
    from ..engine import Detector
    from ..results import Prediction
    from ..runtime import World


def choose_format(output_format: Optional[OutputFormat], as_json: bool, as_jsonl: bool, as_csv: bool) -> OutputFormat:
    """One of --json, --jsonl, --csv and --format (default: a table)."""
    flags = {OutputFormat.json: as_json, OutputFormat.jsonl: as_jsonl, OutputFormat.csv: as_csv}
    chosen = {fmt for fmt, on in flags.items() if on} | ({output_format} if output_format else set())
    if len(chosen) > 1:
        fail("choose one output format: --json, --jsonl, --csv or --format")
    return chosen.pop() if chosen else OutputFormat.table


@contextlib.contextmanager
def open_output(path: Optional[Path]) -> Iterator[TextIO]:
    """The file to write results to (atomically: replaced only when complete), or stdout (left open)."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_open(path, "w", encoding="utf-8") as handle:
        yield handle


def print_totals(labels: Counter, count: int, failed: int, where: str = "") -> None:
    """N inputs: how many got each verdict label, and how many could not be read."""
    counts = ", ".join(f"{labels[label]} {label}" for label in LABELS)
    others = count - failed - sum(labels[label] for label in LABELS)
    note(f"{count} inputs: {counts}{f', {others} undetermined' if others else ''}, {failed} unreadable{where}")


def scan(
    paths: Paths,
    weights: Weights = None,
    output_format: Optional[OutputFormat] = typer.Option(None, "--format", "-f", help="Output format (default: table)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    as_jsonl: bool = typer.Option(False, "--jsonl", help="One JSON line per image, streamed."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header row."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the results to this file (atomically)."),
    threshold: Threshold = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    recursive: Recursive = True,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    progress: ShowProgress = True,
    provenance: ReadProvenance = True,
    real_only: RunRealOnly = True,
    report: Optional[Path] = typer.Option(None, "--report", help="Also write an HTML report with explanation pictures to this folder."),
    resume: bool = typer.Option(False, "--resume", help="With --jsonl --output: append each result as it comes; after a kill, the same command scans only what is missing."),
) -> None:
    """Scan images: the verdict (a declaration of the file's origin first, else the pixels), the probability of
    being AI-generated and the patches that drove it.
    Several GPUs or machines: torchrun --nproc_per_node=N -m aidetect scan ... --jsonl --output FILE."""
    from ..explain import explain_inputs
    from ..render.html_report import ScanReport
    from ..render.predictions import write_predictions
    from ..runtime import World

    fmt = choose_format(output_format, as_json, as_jsonl, as_csv)
    world = World.from_env()
    sharded = resume or world.size > 1
    if sharded and (fmt is not OutputFormat.jsonl or not output or report):
        fail("--resume and multi-process scans write JSON lines to a file: use --jsonl --output FILE (no --report)")
    detector = load_detector(weights, device=world.device(device), batch_size=batch_size, workers=workers,
                             threshold=threshold, max_pixels=max_pixels, provenance=provenance,
                             real_only=real_only)
    items = find_inputs(paths, recursive)
    if sharded:
        scan_to_file(detector, items, output, world, resume, progress)
    scan_report = None
    if report:
        make_folder(report, "--report")
        scan_report = ScanReport(report)
        results = scan_report.collect(explain_inputs(detector, items, scan_report.explain_dir, real_only=False))
    else:
        results = detector.iter_predict(items)
    stream = with_progress(results, len(items), progress)
    with open_output(output) as handle:
        predictions = list(write_predictions(stream, fmt, handle, detector.summary(), None if output else out))
    if scan_report:
        note(f"report: {scan_report.write(detector.summary())}")
    failed = sum(1 for p in predictions if not p.ok)
    print_totals(Counter(p.label for p in predictions if p.ok), len(predictions), failed)
    finish(failed)


def scan_to_file(detector: Detector, items: list, output: Path, world: World, resume: bool, progress: bool) -> None:
    """Resumable and multi-process scans (distributed_scan.py); rank 0 prints the totals of the whole file."""
    from ..distributed_scan import scan_to_jsonl
    from ..resume import ResultsError

    def wrap(stream: Iterator[Prediction], total: int) -> Iterator[Prediction]:
        return with_progress(stream, total, progress and world.main)

    try:
        totals = scan_to_jsonl(detector, items, output, world, resume, wrap)
    except ResultsError as exc:
        fail(str(exc), EXIT_SOME_FAILED)
    except OSError as exc:
        fail(f"cannot write {exc.filename or output}: {exc.strerror or exc}")
    if world.main:
        print_totals(totals.labels, totals.count, totals.failed, f" (all in {output})")
    finish(totals.failed)


def explain(
    paths: Paths,
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for <name>.explain.png and <name>.explain.json."),
    weights: Weights = None,
    threshold: Threshold = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    recursive: Recursive = True,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    progress: ShowProgress = True,
    provenance: ReadProvenance = True,
    real_only: RunRealOnly = True,
) -> None:
    """Explain predictions: a picture per image with the chosen patches, the activation map and the attention
    each patch got, plus the same numbers as JSON. Two inputs with the same name get a-2, a-3..."""
    from ..explain import explain_inputs

    make_folder(out_dir, "--out")
    detector = load_detector(weights, device=device, batch_size=batch_size, workers=workers,
                             threshold=threshold, max_pixels=max_pixels, provenance=provenance,
                             real_only=real_only)
    items = find_inputs(paths, recursive)
    failed = 0
    for result in with_progress(explain_inputs(detector, items, out_dir), len(items), progress):
        p = result.prediction
        if p.ok:
            out.print(f"{p.path}: {p.probability:.4f} {p.label} ({p.verdict.basis}) -> {result.picture}",
                      highlight=False, markup=False, soft_wrap=True)
        else:
            failed += 1
            note(f"error: {p.path}: {p.error}")
    note(f"{len(items)} inputs: {len(items) - failed} explained in {out_dir}, {failed} unreadable")
    finish(failed)


def info(
    weights: Weights = None,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show a checkpoint's card: backbone, parameters, hash, training data, metrics, threshold."""
    import json

    from ..checkpoint import CheckpointError, describe_checkpoint
    from ..render.checkpoint import checkpoint_table

    try:
        summary, card = describe_checkpoint(weights)
    except CheckpointError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    out.print(checkpoint_table(summary, card.name))
