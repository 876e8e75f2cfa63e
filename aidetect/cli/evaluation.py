"""Commands that measure a checkpoint or set its operating point: `eval`, `calibrate`, `convert`, `bench`."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from ..config import BenchConfig, Branch, PatchStrategy
from .common import (BENCH, BatchSize, Device, ShowProgress, Threshold, Weights, Workers, fail, finish, int_list, note,
                     out, report_left_out, running)


def eval_command(
    root: Path = typer.Argument(..., help="ROOT/<set>/{0_real,1_fake}/... (or one set holding 0_real and 1_fake)."),
    weights: Weights = None,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout: one line per set, mean, family and pooled row."),
    families: Optional[Path] = typer.Option(None, "--families", help="JSON object mapping set names to families (mean per family)."),
    by_generator: bool = typer.Option(False, "--by-generator", help="One set per generator under ROOT, each against every real under ROOT (leave-generator-out, for a corpus's val_out); AP class-balanced, so that chance is 0.5 for every set."),
    jpeg: Optional[int] = typer.Option(None, "--jpeg", min=1, max=100, help="Re-encode every image as JPEG at this quality first."),
    blur: float = typer.Option(0.0, "--blur", min=0.0, help="Gaussian blur every image with this sigma first."),
    resize: float = typer.Option(1.0, "--resize", min=0.01, max=8.0, help="Resize every image by this factor first (area averaging down, bicubic up)."),
    branch: Branch = typer.Option(Branch.final, "--branch", help="Rank by the final probability, the fused model's alone, or the real-only branch's score (accuracies at its own threshold)."),
    sweep: bool = typer.Option(False, "--sweep", help="JPEG 100/90/75/50/30 and blur 0/1/2/3; writes tables and plots to --out."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for the --sweep files."),
    patches: Optional[PatchStrategy] = typer.Option(None, "--patches", help="Swap the patch strategy, same weights (ablations)."),
    against: Optional[Path] = typer.Option(None, "--against", help="A second checkpoint, scored on the same images: the difference of each AP with its paired bootstrap interval."),
    threshold: Threshold = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    progress: ShowProgress = True,
) -> None:
    """Evaluate a checkpoint on labelled sets: AP (with a 90 % bootstrap interval), AUC and accuracies per set,
    their mean, and a pooled AP; --against compares two checkpoints on the same images."""
    from ..checkpoint import CheckpointError
    from ..datasets import DatasetError, find_sets, generator_sets, read_families
    from ..engine import Detector
    from ..evaluation import evaluate as evaluation
    from ..evaluation.perturb import Perturbation
    from ..render.evaluation import comparison_table, report_table, results_csv, results_json, sweep_table, write_sweep

    if as_json and as_csv:
        fail("choose one of --json and --csv")
    if sweep and (jpeg is not None or blur or resize != 1):
        fail("--sweep runs its own JPEG and blur levels: drop --jpeg/--blur/--resize")
    if sweep != (out_dir is not None):
        fail("--sweep and --out go together")
    if against and (sweep or as_csv):
        fail("--against compares one clean evaluation: drop --sweep and --csv")
    try:
        sets = generator_sets(root) if by_generator else find_sets(root)
        mapping = read_families(families) if families else None
        options = dict(threshold=threshold, batch_size=batch_size, device=device, workers=workers, provenance=False,
                       real_only=branch is not Branch.fused)
        detector = Detector.load(weights, patches.value if patches else None, **options)
        baseline = Detector.load(against, patches.value if patches else None, **options) if against else None
        for loaded in (detector, baseline) if baseline else (detector,):
            evaluation.branch_threshold(loaded, branch)  # a checkpoint without the branch asked for: refused here
    except (DatasetError, CheckpointError, ValueError) as exc:
        fail(str(exc))
    perturbations = evaluation.sweep_perturbations() if sweep else [Perturbation(jpeg, blur, resize)]
    images = len(evaluation.unique_paths(sets))
    started = time.monotonic()
    with running("evaluating", progress, total=images * len(perturbations) * (2 if baseline else 1)) as step:
        results = evaluation.evaluate(detector, sets, perturbations, mapping, step.advance, by_generator, branch)
        if baseline:
            other = evaluation.evaluate(baseline, sets, perturbations, mapping, step.advance, by_generator, branch)
    if baseline:
        comparison = evaluation.compare(results[0], other[0], sets, balanced=by_generator)
        if as_json:
            sys.stdout.write(json.dumps({"candidate": detector.summary(), "baseline": baseline.summary(),
                                         **comparison.to_dict()}, indent=2) + "\n")
        else:
            out.print(comparison_table(comparison, detector.info.name, baseline.info.name))
    elif as_json:
        sys.stdout.write(results_json(results, detector.summary()))
    elif as_csv:
        sys.stdout.write(results_csv(results))
    else:
        out.print(sweep_table(results) if sweep else report_table(results[0]))
    if sweep:
        for path in write_sweep(results, detector.summary(), out_dir):
            note(f"wrote {path}")
    failed = {path for result in results + (other if baseline else []) for path, _ in result.errors}
    report_left_out(results[0].errors)
    note(f"{len(sets)} sets, {images} images x {len(perturbations)} perturbation(s), {len(failed)} unreadable; "
         f"{time.monotonic() - started:.1f} s")
    finish(failed)


def calibrate(
    real_dir: Path = typer.Argument(..., help="Folder of real images from the domain to calibrate for."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder of generated images: also fit a logit bias."),
    target_fpr: float = typer.Option(0.05, "--target-fpr", min=0.0, max=1.0, help="Largest share of reals to flag, on every real source at once."),
    target_miss: float = typer.Option(0.05, "--target-miss", min=0.0, max=0.99, help="With fakes: largest share of them to call 'no sign of generation' (the lower threshold)."),
    out_path: Path = typer.Option(..., "--out", "-o", help="The calibrated checkpoint to write."),
    combine_on: Optional[Path] = typer.Option(None, "--combine-on", help="A labelled root the model did not train on (a corpus's val_in): fit the combination of the fused model and the real-only branch there first, then calibrate the combined probability. Check it on held-out generators (eval --by-generator --against) before using it."),
    weights: Weights = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    progress: ShowProgress = True,
) -> None:
    """Set a checkpoint's operating point: the threshold of "generated" for a target false-positive rate on every
    real source, and, given fakes, the lower threshold of "no sign of generation" and a logit bias. REAL_DIR is a
    folder of reals (one source) or a labelled root (0_real/1_fake below it, e.g. a corpus's val_out: its reals'
    sources are its folders, its fakes the fakes)."""
    from ..checkpoint import CheckpointError
    from ..datasets import DatasetError
    from ..evaluation.calibrate import calibrate_checkpoint
    from ..render.evaluation import calibration_table

    with running("scoring", progress, catch=(CheckpointError, DatasetError, ValueError)) as step:
        calibration, failed = calibrate_checkpoint(real_dir, out_path, fake, target_fpr, weights, workers,
                                                   step.advance, target_miss, combine_on, batch_size=batch_size,
                                                   device=device)
    report_left_out((p.path, p.error) for p in failed)
    out.print(calibration_table(calibration))
    if combine_on:
        from ..checkpoint import read_checkpoint

        c = read_checkpoint(out_path)[0].combination
        note(f"combination fitted on {combine_on}: logit = {c.cnn_weight:.3f} x fused logit "
             f"{c.real_only_weight:+.3f} x (real-only score - {c.centre:.1f}) / {c.scale:.1f} {c.bias:+.3f}")
    note(f"wrote {out_path}")


def convert(
    source: Path = typer.Argument(..., help="A published PSM checkpoint (.pth state dict)."),
    target: Path = typer.Argument(..., help="The aidetect checkpoint to write."),
) -> None:
    """Convert a published PSM checkpoint (Ju et al.; ResNet-50) to aidetect's checkpoint format."""
    from ..convert import ConvertError, convert_checkpoint

    try:
        convert_checkpoint(source, target)
    except ConvertError as exc:
        fail(str(exc))
    out.print(f"wrote {target} (resnet50, psm patches, threshold 0.5); check it with `aidetect info -w {target}`",
              highlight=False)


def bench(
    backbone: str = typer.Option(BENCH.backbone, "--backbone", help="Backbone with random weights (speed only)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="A checkpoint instead of random weights (use it with --check-dir)."),
    device: Device = BENCH.device,
    full: bool = typer.Option(False, "--full", help="The long matrix: 256/1024/4000 px scans, batch sizes 1/4/16/64, whole-image decoding, 32 images, 5 repeats (tens of minutes on a small CPU)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Images per forward pass (default: the engine's, 1 on the CPU, 16 on GPUs)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-n", min=1, help=f"Timed repeats of each measurement (median, min, max; default {BENCH.repeats})."),
    batches: Optional[str] = typer.Option(None, "--batches", help="Batch sizes to compare, e.g. 1,4,16,64 (default: none; --full: those)."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help=f"Sides of the generated JPEGs for the end-to-end scans (default {','.join(map(str, BENCH.sizes))}; --full: 256,1024,4000)."),
    images: Optional[int] = typer.Option(None, "--images", min=1, help=f"JPEGs per size in the end-to-end scans (default {BENCH.images})."),
    workers: Workers = BENCH.workers,
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch intra-op threads (default: torch's)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Also measure channels-last against NCHW."),
    bf16: bool = typer.Option(False, "--bf16", help="Also measure bf16 autocast."),
    check_dir: Optional[Path] = typer.Option(None, "--check-dir", help="Images to compare the speed-ups' probabilities with fp32 on."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Measure speed and memory here: backbone floor, fused rate and overhead, an end-to-end scan and its peak
    memory (a quick run by default; --full for the whole matrix)."""
    from ..checkpoint import CheckpointError
    from ..evaluation.bench import run_bench
    from ..render.bench import bench_json, bench_tables

    config = BenchConfig(backbone=backbone, weights=str(weights) if weights else None, device=device,
                         batch_size=batch_size, workers=workers, threads=threads, channels_last=channels_last,
                         bf16=bf16, check_dir=str(check_dir) if check_dir else None)
    config = config.full() if full else config
    chosen = {"repeats": repeats, "images": images, "batches": batches and int_list(batches),
              "sizes": sizes and int_list(sizes)}
    config = dataclasses.replace(config, **{k: v for k, v in chosen.items() if v is not None})
    try:
        report = run_bench(config, lambda stage: note(f"bench: {stage}"))
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(bench_json(report))
        return
    for table in bench_tables(report):
        out.print(table)
