"""The `aidetect` command line: parses arguments, calls the library, prints. No model logic here.

Start-up matters (`aidetect --help` should answer at once): this module imports nothing heavy at
the top. Each command imports the library it calls, and option defaults come from the torch-free
config dataclasses (config.py, synth/config.py), so every default is written once.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .atomic import atomic_open
from .config import (DEFAULT_MAX_PIXELS, AdaptConfig, AugmentConfig, BenchConfig, FeatureLevels, HeadConfig, ModelConfig,
                     PatchStrategy, TrainConfig)
from .synth.config import FitConfig

if TYPE_CHECKING:
    from .engine import Detector
    from .results import Prediction

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tell AI-generated images from real photographs (fused global + local patches).")
out = Console(width=None if sys.stdout.isatty() else 160)  # full rows when piped to a file
err = Console(stderr=True, soft_wrap=True)  # one message, one line: paths never wrap, so logs grep

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_ITEMS = 8


def defaults(config_class: type) -> SimpleNamespace:
    """A dataclass's field defaults, read without making an instance (making a ModelConfig loads torch)."""
    return SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(config_class)
                              if f.default is not dataclasses.MISSING})


MODEL, AUGMENT, TRAIN, HEADS, ADAPT, BENCH, FIT = (defaults(c) for c in (
    ModelConfig, AugmentConfig, TrainConfig, HeadConfig, AdaptConfig, BenchConfig, FitConfig))


# Options shared by the commands that run a checkpoint on images (one definition each).
Paths = Annotated[List[str], typer.Argument(help="Image files, folders or glob patterns.")]
Weights = Annotated[Optional[Path], typer.Option("--weights", "-w", help="Checkpoint (default: $AIDETECT_WEIGHTS, then the shipped one).")]
Threshold = Annotated[Optional[float], typer.Option("--threshold", "-t", min=0.0, max=1.0, help="Decision threshold (default: the checkpoint's).")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Images per forward pass (default: 1 on the CPU, where it measured fastest; 16 on GPUs).")]
Workers = Annotated[int | None, typer.Option("--workers", "-j", min=0, show_default=False, help="Decoding worker processes (0: decode in this process; default 2, none on a CPU of 2 cores or fewer).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Recursive = Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", min=1, help="Refuse images with more pixels than this.")]
ShowProgress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr for more than a few images.")]

class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def load_detector(weights: Optional[Path], **options) -> Detector:
    """Detector.load, with a bad checkpoint or option as a usage error (one line)."""
    from .checkpoint import CheckpointError
    from .engine import Detector

    try:
        return Detector.load(weights, **options)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))


def _progress_bar(enabled: bool) -> Progress:
    """The progress bar of every long command: on stderr, gone when done."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err, transient=True, disable=not enabled)


def _with_progress(predictions: Iterator[Prediction], total: int, enabled: bool) -> Iterator[Prediction]:
    with _progress_bar(enabled) as progress:
        task = progress.add_task("scanning", total=total)
        for prediction in predictions:
            progress.advance(task)
            yield prediction


@app.command()
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
    report: Optional[Path] = typer.Option(None, "--report", help="Also write an HTML report with explanation pictures to this folder."),
    resume: bool = typer.Option(False, "--resume", help="With --jsonl --output: append each result as it comes; after a kill, the same command scans only what is missing."),
) -> None:
    """Scan images: probability of being AI-generated, verdict, and the patches that drove it.
    Several GPUs or machines: torchrun --nproc_per_node=N -m aidetect scan ... --jsonl --output FILE."""
    from .formats import csv_text, json_document, prediction_json, results_table
    from .inputs import iter_inputs
    from .runtime import World

    world = World.from_env()
    chosen = [f for f, on in ((OutputFormat.json, as_json), (OutputFormat.jsonl, as_jsonl), (OutputFormat.csv, as_csv)) if on]
    if output_format:
        chosen.append(output_format)
    if len(set(chosen)) > 1:
        fail("choose one output format: --json, --jsonl, --csv or --format")
    fmt = chosen[0] if chosen else OutputFormat.table
    sharded = resume or world.size > 1
    if sharded and (fmt is not OutputFormat.jsonl or not output or report):
        fail("--resume and multi-process scans write JSON lines to a file: use --jsonl --output FILE (no --report)")
    detector = load_detector(weights, device=world.device(device), batch_size=batch_size, workers=workers,
                             threshold=threshold, max_pixels=max_pixels)
    items = list(iter_inputs(paths, recursive=recursive))
    if not items:
        fail("no images found in the given paths", EXIT_SOME_FAILED)
    if sharded:
        _scan_to_file(detector, items, output, world, resume, progress)
    scan_report = None
    if report:
        from .report import ScanReport

        make_folder(report, "--report")
        scan_report = ScanReport(report)
    results = scan_report.scan(detector, items) if scan_report else detector.iter_predict(items)
    stream = _with_progress(results, len(items), progress and len(items) >= PROGRESS_MIN_ITEMS)

    predictions: list[Prediction] = []
    if fmt is OutputFormat.jsonl:  # streamed: each line as soon as its batch is done
        target = atomic_open(output, "w", encoding="utf-8") if output else _stdout()
        with target as handle:
            for prediction in stream:
                predictions.append(prediction)
                handle.write(prediction_json(prediction) + "\n")
                handle.flush()
    else:
        predictions = list(stream)
        if fmt is OutputFormat.table:
            table = results_table(predictions)
            if output:
                with atomic_open(output, "w", encoding="utf-8") as handle:
                    Console(file=handle, width=160, no_color=True).print(table)
            else:
                out.print(table)
        else:
            text = json_document(predictions, detector.summary()) if fmt is OutputFormat.json else csv_text(predictions)
            if output:
                with atomic_open(output, "w", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                sys.stdout.write(text)
    if scan_report:
        err.print(f"report: {scan_report.write(detector.summary())}", highlight=False, markup=False)
    failed = sum(1 for p in predictions if not p.ok)
    flagged = sum(1 for p in predictions if p.verdict == "generated")
    err.print(f"{len(predictions)} inputs: {flagged} generated, {len(predictions) - flagged - failed} real, "
              f"{failed} unreadable", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _scan_to_file(detector: Detector, items: list, output: Path, world, resume: bool, progress: bool) -> None:
    """Resumable and multi-process scans (distributed_scan.py); rank 0 prints the totals of the whole file."""
    from .distributed_scan import scan_to_jsonl
    from .resume import ResultsError

    def wrap(stream: Iterator[Prediction], total: int) -> Iterator[Prediction]:
        return _with_progress(stream, total, progress and world.main and total >= PROGRESS_MIN_ITEMS)

    try:
        totals = scan_to_jsonl(detector, items, output, world, resume, wrap)
    except ResultsError as exc:
        fail(str(exc), EXIT_SOME_FAILED)
    except OSError as exc:
        fail(f"cannot write {exc.filename or output}: {exc.strerror or exc}")
    if world.main:
        err.print(f"{totals.count} inputs: {totals.generated} generated, "
                  f"{totals.count - totals.generated - totals.failed} real, {totals.failed} unreadable "
                  f"(all in {output})", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if totals.failed else EXIT_OK)


class _stdout:
    """stdout as a context manager that is not closed on exit."""

    def __enter__(self):
        return sys.stdout

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()


@app.command()
def info(
    weights: Weights = None,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show a checkpoint's card: backbone, parameters, hash, training data, metrics, threshold."""
    import json

    from .checkpoint import CheckpointError, file_sha256, load_checkpoint, resolve_weights

    path = resolve_weights(weights)
    try:
        model, card = load_checkpoint(path)  # builds the model: weights that do not fit the config are an error
    except CheckpointError as exc:
        fail(str(exc))
    params = sum(p.numel() for p in model.parameters())
    summary = {"path": str(path), "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
               "parameters": params, "config": card.config.to_dict(), "threshold": card.threshold,
               **{k: v for k, v in card.metadata.items() if k != "threshold"}}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    table = Table(show_header=False, title=f"checkpoint {card.name}")
    for key, value in summary.items():
        table.add_row(key, json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value))
    out.print(table)



def _crop_text(crop: tuple[int, int] | None) -> str:
    return "whole" if crop is None else f"{crop[0]},{crop[1]}"


def _crop_range(text: str) -> tuple[int, int] | None:
    """--crop: 'whole', or MIN,MAX with 1 <= MIN <= MAX."""
    if text == "whole":
        return None
    sides = _int_list(text)
    if len(sides) != 2 or sides[0] > sides[1]:
        fail(f"--crop takes MIN,MAX (MIN <= MAX) or 'whole', got {text!r}")
    return sides[0], sides[1]


def _parse_root(spec: str) -> tuple[str, float]:
    """ROOT or ROOT:WEIGHT (the weight sets how often the root's images are drawn)."""
    root, sep, weight = spec.rpartition(":")
    if sep and root and weight.replace(".", "", 1).isdigit():
        return root, float(weight)
    return spec, 1.0


@app.command()
def train(
    roots: Optional[List[str]] = typer.Argument(None, help="Training roots in the 0_real/1_fake layout, each optionally ROOT:WEIGHT."),
    select: Optional[Path] = typer.Option(None, "--select", help="Held-out generators and real sources (a corpus's val_out): the epoch kept and the threshold are chosen there."),
    val: Optional[Path] = typer.Option(None, "--val", help="In-distribution validation, reported apart (chosen on when there is no --select)."),
    val_fraction: float = typer.Option(TRAIN.val_fraction, "--val-fraction", min=0.01, max=0.9, help="Without --select or --val: this share of the training roots is held out to choose on."),
    out_dir: Path = typer.Option(Path(TRAIN.out), "--out", "-o", help="Run folder: best.pt, log.jsonl (and last_state.pt with --finetune)."),
    backbone: str = typer.Option(MODEL.backbone, "--backbone"),
    patches: PatchStrategy = typer.Option(PatchStrategy(MODEL.patches), "--patches", help="Where the local branch looks."),
    features: FeatureLevels = typer.Option(FeatureLevels(MODEL.features), "--features", help="Tokens from every feature level, or from the last map only (the paper)."),
    pretrained: bool = typer.Option(TRAIN.pretrained, "--pretrained/--scratch", help="Start the backbone from ImageNet weights."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this aidetect checkpoint."),
    views: int = typer.Option(TRAIN.views, "--views", min=1, help="Augmented views cached per training image (frozen backbone)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Descriptor cache folder (default: $AIDETECT_CACHE/features, else ~/.cache/aidetect/features)."),
    finetune: bool = typer.Option(TRAIN.finetune, "--finetune", help="Train end to end, backbone included (the paper's recipe; slow on a CPU), instead of the heads on a frozen backbone."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help=f"Default {HEADS.epochs} ({TRAIN.epochs} with --finetune)."),
    lr: Optional[float] = typer.Option(None, "--lr", help=f"Default {HEADS.lr:g} ({TRAIN.lr:g} with --finetune)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=f"Default {HEADS.batch_size} (both)."),
    patience: Optional[int] = typer.Option(None, "--early-stop", min=1, help=f"Stop after this many epochs without a better score; default {HEADS.patience} ({TRAIN.early_stop} with --finetune)."),
    warmup_epochs: int = typer.Option(TRAIN.warmup_epochs, "--warmup-epochs", min=0, help="With --finetune: single-branch epochs on native 224 crops first."),
    freeze_backbone: bool = typer.Option(TRAIN.freeze_backbone, "--freeze-backbone", help="With --finetune: the fused epochs after the warm-up train only the heads."),
    micro_batch: int = typer.Option(TRAIN.micro_batch, "--micro-batch", min=1, help="With --finetune: images per step; gradients accumulate to --batch-size."),
    epoch_size: Optional[int] = typer.Option(None, "--epoch-size", min=1, help="With --finetune: samples drawn per epoch (default: every training image once)."),
    blur_prob: float = typer.Option(AUGMENT.blur_prob, "--blur-prob", min=0.0, max=1.0),
    jpeg_prob: float = typer.Option(AUGMENT.jpeg_prob, "--jpeg-prob", min=0.0, max=1.0),
    reencode_prob: float = typer.Option(AUGMENT.reencode_prob, "--reencode-prob", min=0.0, max=1.0, help="Re-encode both classes as JPEG (format alignment)."),
    rescale_prob: float = typer.Option(AUGMENT.rescale_prob, "--rescale-prob", min=0.0, max=1.0, help="Downscale both classes alike (resampling alignment)."),
    crop: str = typer.Option(_crop_text(AUGMENT.crop), "--crop", help="Side range MIN,MAX of the random native-resolution square crop of each training view, or 'whole' for the image's whole shorter side (the square the global view of scan shows)."),
    flip: bool = typer.Option(AUGMENT.flip, "--flip/--no-flip"),
    seed: int = typer.Option(TRAIN.seed, "--seed"),
    device: Device = TRAIN.device,
    workers: int = typer.Option(TRAIN.workers, "--workers", "-j", min=0),
    resume: Optional[Path] = typer.Option(None, "--resume", help="With --finetune: continue the run in this folder (or last_state.pt). A frozen run resumes by itself: its descriptors are cached."),
    progress: ShowProgress = True,
) -> None:
    """Train the detector: by default the heads on a frozen ImageNet backbone, chosen on held-out generators
    (--select). --finetune trains end to end (multi-GPU: torchrun --nproc_per_node=N -m aidetect train ...)."""
    from .checkpoint import CheckpointError
    from .datasets import DatasetError
    from .train import Trainer, train_frozen

    with _progress_bar(progress) as bar:
        task = bar.add_task("train", total=1)

        def on_progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        try:
            if resume:
                trainer = Trainer.resume(resume, on_progress=on_progress)
                best = trainer.fit()
            elif not roots:
                fail("give at least one training root, or --resume RUN_DIR")
            else:
                parsed = [_parse_root(r) for r in roots]
                heads = HeadConfig(**{k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size),
                                                         ("patience", patience)) if v is not None})
                fine = {k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size),
                                          ("early_stop", patience)) if v is not None}
                config = TrainConfig(
                    roots=[r for r, _ in parsed], root_weights=[w for _, w in parsed], out=str(out_dir),
                    select=str(select) if select else None, val=str(val) if val else None, val_fraction=val_fraction,
                    model=ModelConfig(backbone=backbone, patches=patches.value, features=features.value),
                    pretrained=pretrained, init=str(init) if init else None, views=views,
                    cache=str(cache) if cache else None, heads=heads, finetune=finetune,
                    warmup_epochs=warmup_epochs, freeze_backbone=freeze_backbone, micro_batch=micro_batch,
                    epoch_size=epoch_size, seed=seed, device=device, workers=workers,
                    augment=AugmentConfig(blur_prob=blur_prob, jpeg_prob=jpeg_prob, reencode_prob=reencode_prob,
                                          rescale_prob=rescale_prob, crop=_crop_range(crop), flip=flip), **fine)
                if finetune:
                    trainer = Trainer(config, on_progress=on_progress)
                    best = trainer.fit()
                else:
                    report = train_frozen(config, on_progress)
        except (ValueError, CheckpointError, DatasetError) as exc:
            fail(str(exc))
    if resume or finetune:
        if trainer.world.main:
            summary = "none" if best is None else f"AP {best.ap:.4f}, accuracy {best.accuracy:.3f} on {best.n_real + best.n_fake} images"
            err.print(f"best validation: {summary}; checkpoint: {trainer.out / 'best.pt'}", highlight=False)
        return
    for path, reason in report.errors:
        err.print(f"unreadable, left out: {path}: {reason}", highlight=False, markup=False)
    table = Table(title=f"held-out generators ({select or val or 'split off the training roots'}), epoch {report.best_epoch}")
    table.add_column("generator")
    table.add_column("AP", justify="right")
    for name, ap in report.selection.per_generator.items():
        table.add_row(escape(name), f"{ap:.3f}")
    table.add_row("[bold]mean[/bold]", f"[bold]{report.selection.mean_ap:.3f}[/bold]")
    out.print(table)
    val_text = "" if report.val is None else f"; in-distribution val AP {report.val.ap:.3f}"
    err.print(f"{report.images} training images, threshold {report.threshold:.4f} (held-out reals){val_text}; "
              f"{report.seconds:.0f} s; checkpoint: {report.checkpoint}", highlight=False)


# --- evaluation: eval, calibrate, convert (logic in evaluate.py, calibrate.py, convert.py) ---


@app.command("eval")
def eval_command(
    root: Path = typer.Argument(..., help="ROOT/<set>/{0_real,1_fake}/... (or one set holding 0_real and 1_fake)."),
    weights: Weights = None,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout: one line per set, mean, family and pooled row."),
    families: Optional[Path] = typer.Option(None, "--families", help="JSON object mapping set names to families (mean per family)."),
    by_generator: bool = typer.Option(False, "--by-generator", help="One set per generator under ROOT, each against every real under ROOT (leave-generator-out, for a corpus's val_out); AP class-balanced, so that chance is 0.5 for every set."),
    jpeg: Optional[int] = typer.Option(None, "--jpeg", min=1, max=100, help="Re-encode every image as JPEG at this quality first."),
    blur: float = typer.Option(0.0, "--blur", min=0.0, help="Gaussian blur every image with this sigma first."),
    sweep: bool = typer.Option(False, "--sweep", help="JPEG 100/90/75/50/30 and blur 0/1/2/3; writes tables and plots to --out."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for the --sweep files."),
    patches: Optional[PatchStrategy] = typer.Option(None, "--patches", help="Swap the patch strategy, same weights (ablations)."),
    threshold: Threshold = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    progress: ShowProgress = True,
) -> None:
    """Evaluate a checkpoint on labelled sets: AP, AUC and accuracies per set, their mean, and a pooled AP."""
    import time

    from . import evaluate as evaluation
    from .checkpoint import CheckpointError
    from .datasets import DatasetError, find_sets, generator_sets, read_families
    from .engine import Detector
    from .evalreport import report_table, results_csv, results_json, sweep_table, write_sweep
    from .perturb import Perturbation

    if as_json and as_csv:
        fail("choose one of --json and --csv")
    if sweep and (jpeg is not None or blur):
        fail("--sweep runs its own JPEG and blur levels: drop --jpeg/--blur")
    if sweep != (out_dir is not None):
        fail("--sweep and --out go together")
    try:
        sets = generator_sets(root) if by_generator else find_sets(root)
        mapping = read_families(families) if families else None
        detector = Detector.load(weights, patches.value if patches else None, threshold=threshold,
                                 batch_size=batch_size, device=device, workers=workers)
    except (DatasetError, CheckpointError, ValueError) as exc:
        fail(str(exc))
    perturbations = evaluation.sweep_perturbations() if sweep else [Perturbation(jpeg, blur)]
    images = len(evaluation.unique_paths(sets))
    started = time.monotonic()
    with _progress_bar(progress) as bar:
        task = bar.add_task("evaluating", total=images * len(perturbations))
        results = evaluation.evaluate(detector, sets, perturbations, mapping, lambda n: bar.advance(task, n),
                                      balanced=by_generator)
    if as_json:
        sys.stdout.write(results_json(results, detector.summary()))
    elif as_csv:
        sys.stdout.write(results_csv(results))
    else:
        out.print(sweep_table(results) if sweep else report_table(results[0]))
    if sweep:
        for path in write_sweep(results, detector.summary(), out_dir):
            err.print(f"wrote {path}", highlight=False)
    failed = {path for result in results for path, _ in result.errors}
    for path, reason in results[0].errors:
        err.print(f"unreadable, left out: {path}: {reason}", highlight=False, markup=False)
    err.print(f"{len(sets)} sets, {images} images x {len(perturbations)} perturbation(s), {len(failed)} unreadable; "
              f"{time.monotonic() - started:.1f} s", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


@app.command()
def calibrate(
    real_dir: Path = typer.Argument(..., help="Folder of real images from the domain to calibrate for."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder of generated images: also fit a logit bias."),
    target_fpr: float = typer.Option(0.05, "--target-fpr", min=0.0, max=1.0, help="Largest share of reals to flag."),
    out_path: Path = typer.Option(..., "--out", "-o", help="The calibrated checkpoint to write."),
    weights: Weights = None,
    batch_size: BatchSize = None,
    workers: Workers = None,
    device: Device = "auto",
    progress: ShowProgress = True,
) -> None:
    """Set a checkpoint's threshold for a target false-positive rate (and its logit bias, given fakes)."""
    from .calibrate import calibrate_checkpoint
    from .checkpoint import CheckpointError

    with _progress_bar(progress) as bar:
        task = bar.add_task("scoring", total=None)
        try:
            calibration, failed = calibrate_checkpoint(real_dir, out_path, fake, target_fpr, weights, workers,
                                                       lambda n: bar.advance(task, n), batch_size=batch_size, device=device)
        except (CheckpointError, ValueError) as exc:
            fail(str(exc))
    for prediction in failed:
        err.print(f"unreadable, left out: {prediction.path}: {prediction.error}", highlight=False, markup=False)
    tpr = "-" if calibration.tpr is None else f"{calibration.tpr:.3f}"
    out.print(f"threshold {calibration.threshold:.6f}, logit bias {calibration.logit_bias:+.4f}: "
              f"FPR {calibration.fpr:.3f} (target {calibration.target_fpr:g}) on {calibration.n_real} reals, "
              f"TPR {tpr} on {calibration.n_fake} fakes; wrote {out_path}", highlight=False)


@app.command()
def adapt(
    real_dir: Path = typer.Argument(..., help="Real photos from your cameras or sources (a few dozen)."),
    fake_dir: Path = typer.Argument(..., help="Images of the generator to adapt to (a few dozen)."),
    out_path: Path = typer.Option(..., "--out", "-o", help="The adapted checkpoint to write."),
    weights: Weights = None,
    holdout: float = typer.Option(ADAPT.holdout, "--holdout", min=0.1, max=0.9, help="Share of each class kept out of the refit, to measure it on."),
    views: int = typer.Option(ADAPT.views, "--views", min=1, help="Augmented views of each refit image."),
    seed: int = typer.Option(ADAPT.seed, "--seed"),
    device: Device = "auto",
    workers: Workers = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    progress: ShowProgress = True,
) -> None:
    """Refit a checkpoint's heads (and threshold) to a new generator and your cameras, in under a minute on a
    CPU; reports the AP before and after on a held-out share of what it was given."""
    import json

    from . import adapt as adaptation
    from .checkpoint import CheckpointError

    config = dataclasses.replace(AdaptConfig(), holdout=holdout, views=views, seed=seed)
    with _progress_bar(progress) as bar:
        task = bar.add_task("describing", total=None)
        try:
            report = adaptation.adapt(real_dir, fake_dir, out_path, weights, config, device, workers,
                                      lambda n: bar.advance(task, n))
        except (CheckpointError, ValueError) as exc:
            fail(str(exc))
    for path, reason in report.errors:
        err.print(f"unreadable, left out: {path}: {reason}", highlight=False, markup=False)
    if report.held_out[0] < config.steady_threshold_reals:
        err.print(f"note: the threshold rests on {report.held_out[0]} held-out real images, too few to be steady; "
                  f"set it on more of your real photos: aidetect calibrate REAL_DIR -w {out_path} -o {out_path}",
                  highlight=False, markup=False)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        change = "helped" if report.ap_after > report.ap_before else "did not help"
        out.print(f"refitted on {report.fitted[0]} real / {report.fitted[1]} generated images; on the "
                  f"{report.held_out[0]} / {report.held_out[1]} held out, AP {report.ap_before:.3f} -> "
                  f"{report.ap_after:.3f} (adapting {change}); threshold {report.threshold:.4f}; "
                  f"{report.seconds:.0f} s; wrote {out_path}", highlight=False, markup=False)
    raise typer.Exit(EXIT_SOME_FAILED if report.errors else EXIT_OK)


@app.command()
def convert(
    source: Path = typer.Argument(..., help="A published PSM checkpoint (.pth state dict)."),
    target: Path = typer.Argument(..., help="The aidetect checkpoint to write."),
) -> None:
    """Convert a published PSM checkpoint (Ju et al.; ResNet-50) to aidetect's checkpoint format."""
    from .convert import ConvertError, convert_checkpoint

    try:
        convert_checkpoint(source, target)
    except ConvertError as exc:
        fail(str(exc))
    out.print(f"wrote {target} (resnet50, psm patches, threshold 0.5); check it with `aidetect info -w {target}`",
              highlight=False)


# --- aligned fakes (logic in synth/) ---


@app.command()
def synth(
    real_root: Optional[Path] = typer.Argument(None, help="Real photos: a folder of them, or a root whose 0_real folders hold them."),
    out_root: Optional[Path] = typer.Argument(None, help="Writes 0_real/ (links to the photos), 1_fake/<arch>/, models/, synth.json."),
    arch: Optional[List[str]] = typer.Option(None, "--arch", "-a", help="Autoencoder family (repeatable; default: all, the pretrained ones only with --pretrained-dir). See --list."),
    pretrained_dir: Optional[Path] = typer.Option(None, "--pretrained-dir", help="Folder holding the pretrained families' weights (taef2: taef2_encoder.pth, taef2_decoder.pth); read only from there, never downloaded."),
    list_archs: bool = typer.Option(False, "--list", help="List the autoencoder families and exit."),
    max_steps: int = typer.Option(FIT.max_steps, "--max-steps", min=1, help="Safety limit; training stops earlier once the reconstructions are sharp. Rerun with a higher limit to train an unfinished family on."),
    crop: int = typer.Option(FIT.crop, "--crop", min=16, help="Training crop side in native pixels."),
    copy_reals: bool = typer.Option(False, "--copy-reals", help="Copy the photos into OUT_ROOT/0_real instead of linking them."),
    batch_size: int = typer.Option(FIT.batch_size, "--batch-size", min=1, help="Training crops per step."),
    adversarial_weight: float = typer.Option(FIT.adversarial_weight, "--adversarial-weight", min=0.0, help=f"Weight of the patch discriminator's loss for the families that use one (ldm8), from step {FIT.adversarial_from:,}."),
    seed: int = typer.Option(0, "--seed"),
    device: Device = "auto",
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Make aligned fakes: reconstruct every real photo with generator-like autoencoders (AutoGAN, aligned datasets)."""
    from .datasets import DatasetError
    from .synth.autoencoders import AUTOENCODERS
    from .synth.build import synthesize
    from .synth.config import SynthConfig

    if list_archs:
        for spec in AUTOENCODERS.values():
            out.print(f"{spec.name:13} {escape(spec.description)}", highlight=False)
            if spec.weights:
                out.print(f"{'':13} --pretrained-dir must hold {', '.join(spec.weights)} ({escape(spec.source)})",
                          highlight=False)
        return
    if real_root is None or out_root is None:
        fail("give REAL_ROOT and OUT_ROOT (see aidetect synth --help)")
    config = SynthConfig(archs=tuple(arch or ()), copy_reals=copy_reals,
                         pretrained_dir=str(pretrained_dir) if pretrained_dir is not None else None,
                         fit=FitConfig(crop=crop, batch_size=batch_size, max_steps=max_steps, seed=seed, device=device,
                                       adversarial_weight=adversarial_weight))
    with _progress_bar(True) as bar:
        task = bar.add_task("synth", total=1)
        try:
            report = synthesize(real_root, out_root, config,
                                lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total))
        except (ValueError, DatasetError, OSError) as exc:
            fail(str(exc))
    for path, reason in report.errors:
        err.print(f"{escape(path)}: {escape(reason)}", highlight=False)
    for row in report.archs:
        if row.reused:
            err.print(f"{row.fit.arch}: kept {row.reused} fakes written earlier with the same weights", highlight=False)
        if row.weights and not row.fit.reached:
            err.print(f"{row.fit.arch}: pretrained, but not sharp by its targets (held-out PSNR {row.fit.psnr:.1f} dB, "
                      f"sharpness {row.fit.sharpness:.2f}); its fakes are in {escape(str(out_root / row.folder))}, "
                      f"which train ignores.", highlight=False)
        elif not row.fit.reached:
            err.print(f"{row.fit.arch}: not sharp by its targets after {row.fit.steps} steps; its fakes are in "
                      f"{escape(str(out_root / row.folder))}, which train ignores. Rerun with a higher --max-steps "
                      f"to train it on.", highlight=False)
    if as_json:
        out.print_json(data=report.to_dict())
        return
    table = Table(title=f"{report.reals} real photos -> {out_root}")
    for column in ("arch", "steps", "sharp by target", "held-out PSNR", "fakes", "PSNR vs twin",
                   "sharpness fake/real", "AUC sharpness", "AUC luminance", "AUC saturation", "written to"):
        table.add_column(column, justify="left" if column in ("arch", "written to") else "right", overflow="fold")
    for row in report.archs:
        fit = row.fit
        table.add_row(fit.arch, "pretrained" if row.weights else str(fit.steps), "yes" if fit.reached else "[red]no[/red]", f"{fit.psnr:.1f} dB",
                      str(row.images), f"{row.psnr:.1f} dB", f"{row.sharpness_ratio:.2f}", f"{row.sharpness_auc:.2f}",
                      f"{row.luminance_auc:.2f}", f"{row.saturation_auc:.2f}", escape(row.folder))
    out.print(table)
    out.print("AUC: how well one trivial statistic alone (Laplacian energy, mean luminance, mean saturation) tells "
              "the fakes from their twins (0.5 = not at all).", highlight=False)


def make_folder(path: Path, option: str) -> None:
    """Create an output folder up front, so that a bad one is a usage error before any work."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{option} {path}: cannot create this folder ({exc.strerror or exc})")


@app.command()
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
) -> None:
    """Explain predictions: a picture per image with the chosen patches, the activation map and the attention
    each patch got, plus the same numbers as JSON. Two inputs with the same name get a-2, a-3..."""
    from .explain import explain_inputs
    from .inputs import iter_inputs

    make_folder(out_dir, "--out")
    detector = load_detector(weights, device=device, batch_size=batch_size, workers=workers,
                             threshold=threshold, max_pixels=max_pixels)
    items = list(iter_inputs(paths, recursive=recursive))
    if not items:
        fail("no images found in the given paths", EXIT_SOME_FAILED)
    failed = 0
    for result in _with_progress(explain_inputs(detector, items, out_dir), len(items),
                                 progress and len(items) >= PROGRESS_MIN_ITEMS):
        p = result.prediction
        if p.ok:
            out.print(f"{p.path}: {p.probability:.4f} {p.verdict} -> {result.picture}", highlight=False, markup=False,
                      soft_wrap=True)
        else:
            failed += 1
            err.print(f"error: {p.path}: {p.error}", highlight=False, markup=False)
    err.print(f"{len(items)} inputs: {len(items) - failed} explained in {out_dir}, {failed} unreadable", highlight=False,
              markup=False)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


# --- bench (logic in bench.py, tables in benchreport.py) ---


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        fail(f"expected positive integers separated by commas, got {text!r}")
    return values


@app.command()
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
    from .bench import run_bench
    from .benchreport import bench_json, bench_tables
    from .checkpoint import CheckpointError

    config = BenchConfig(backbone=backbone, weights=str(weights) if weights else None, device=device,
                         batch_size=batch_size, workers=workers, threads=threads, channels_last=channels_last,
                         bf16=bf16, check_dir=str(check_dir) if check_dir else None)
    config = config.full() if full else config
    chosen = {"repeats": repeats, "images": images, "batches": batches and _int_list(batches),
              "sizes": sizes and _int_list(sizes)}
    config = dataclasses.replace(config, **{k: v for k, v in chosen.items() if v is not None})
    try:
        report = run_bench(config, lambda stage: err.print(f"bench: {stage}", highlight=False))
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(bench_json(report))
        return
    for table in bench_tables(report):
        out.print(table)


# --- training corpus (logic in corpus.py, corpus_manifest.py, corpus_sources.py, corpus_card.py) ---

corpus_app = typer.Typer(no_args_is_help=True, help="The training corpus: public repositories pinned by commit, rebuilt by one command.")
app.add_typer(corpus_app, name="corpus")
ManifestPath = Annotated[Optional[Path], typer.Option("--manifest", "-m", help="Corpus manifest (default: sources.toml, shipped with aidetect).")]


def _load_manifest(path: Optional[Path]):
    from .corpus_manifest import DEFAULT_MANIFEST, ManifestError, load_manifest

    try:
        return load_manifest(path or DEFAULT_MANIFEST)
    except ManifestError as exc:
        fail(str(exc))


@corpus_app.command("list")
def corpus_list(
    manifest: ManifestPath = None,
    as_json: bool = typer.Option(False, "--json", help="One JSON document: sources and generators."),
) -> None:
    """List the manifest's sources: kind, generators and their families and splits, repository, commit, licence."""
    import json

    from .corpus_manifest import manifest_summary

    summary = manifest_summary(_load_manifest(manifest))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(summary['sources'])} sources, {len(summary['generators'])} generators ({summary['manifest']})")
    for column in ("id", "kind", "generators", "families", "split", "repository", "commit", "licence"):
        table.add_column(column, overflow="fold")
    generators = {g["id"]: g for g in summary["generators"]}
    for source in summary["sources"]:
        names = source["generators"]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "") if names else "-"
        families = sorted({generators[g]["family"] for g in names}) or ["-"]
        splits = Counter(generators[g]["split"] for g in names) if names else Counter({source["split"]: 1})
        split = source["split"] if not names else ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
        table.add_row(source["id"], source["kind"], shown, ", ".join(families), split, source["repo"], source["commit"][:12],
                      source["licence"])
    out.print(table)


@corpus_app.command("build")
def corpus_build(
    out_dir: Path = typer.Argument(..., help="The corpus folder, beside the project (never inside it): OUT/<split>/<source>/{0_real,1_fake}/..., OUT/corpus.json."),
    manifest: ManifestPath = None,
    sources: Optional[List[Path]] = typer.Option(None, "--sources", "-s", help="A folder of local copies of the sources: DIR/owner+name/repo, DIR/owner+name, DIR/owner/name or DIR/name (repeatable)."),
    online: bool = typer.Option(False, "--online", help="Clone the sources without a local copy from GitHub into the first --sources folder."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Build without the sources that have no copy (the card lists them)."),
    exclude_near: Optional[List[Path]] = typer.Option(None, "--exclude-near", help="Leave out images near any image under this folder, e.g. the test sets (repeatable)."),
    workers: int = typer.Option(2, "--workers", "-j", min=0, help="Decoding processes (0: decode in this process)."),
    as_json: bool = typer.Option(False, "--json", help="Print the data card as JSON instead of tables."),
    progress: ShowProgress = True,
) -> None:
    """Build the training corpus from local copies of the manifest's sources (or clones, with --online):
    grids cut, duplicates and unreadable files left out, splits by source, and a data card."""
    import json

    from .corpus import CorpusError, build_corpus
    from .corpus_card import card_tables

    loaded = _load_manifest(manifest)
    if online and not sources:
        fail("--online clones into the first --sources folder: give one")
    with _progress_bar(progress) as bar:
        task = bar.add_task("corpus", total=None)
        try:
            report = build_corpus(loaded, out_dir, sources or [], online=online, skip_missing=skip_missing,
                                  exclude_near=exclude_near or [], workers=workers,
                                  progress=lambda stage, done, total: bar.update(task, description=stage, completed=done, total=total))
        except CorpusError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write the corpus: {exc.filename or out_dir}: {exc.strerror or exc}")
    for message in report.missing:
        err.print(f"missing, left out: {message}", highlight=False, markup=False)
    for skip in report.errors:
        err.print(f"unreadable, left out: {skip.source}:{skip.origin}: {skip.detail}", highlight=False, markup=False)
    if as_json:
        sys.stdout.write(json.dumps(report.card, indent=1, ensure_ascii=False) + "\n")
    else:
        for table in card_tables(report.card):
            out.print(table)
    reasons = Counter(skip.reason for skip in report.skipped)
    real = sum(1 for r in report.records if r.label == "real")
    bias = report.card["bias_check"].get("gradient_boosting_auc", {}).get("format and size")
    err.print(f"{len(report.records)} images ({real} real, {len(report.records) - real} generated by "
              f"{len({r.generator for r in report.records if r.generator})} generators) in {out_dir}; left out: "
              + ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in sorted(reasons.items()))
              + (f"; format and size alone tell the classes apart with ROC AUC {bias}" if bias is not None else "")
              + f"; {report.seconds:.0f} s", highlight=False, markup=False)
    raise typer.Exit(EXIT_SOME_FAILED if report.errors else EXIT_OK)


@corpus_app.command("bias")
def corpus_bias(
    corpus: Path = typer.Argument(..., help="A corpus built by `aidetect corpus build` (it holds corpus.json)."),
    split: str = typer.Option("train", "--split", help="train, val_in or val_out."),
    aligned: bool = typer.Option(False, "--aligned", help="Check the views `aidetect train` sees (its default alignment), not the files."),
    sample: int = typer.Option(2000, "--sample", min=0, help="With --aligned: this many images drawn at random (0: all)."),
    crop: str = typer.Option(_crop_text(AUGMENT.crop), "--crop", help="With --aligned: the views' crop, as train's --crop."),
    reencode_prob: float = typer.Option(AUGMENT.reencode_prob, "--reencode-prob", min=0.0, max=1.0, help="With --aligned: as train's --reencode-prob."),
    as_json: bool = typer.Option(False, "--json", help="Print the check as JSON."),
    progress: ShowProgress = True,
) -> None:
    """How well format and size alone tell real from generated (cross-validated ROC AUC of classifiers on those
    statistics alone; 0.5: not at all), on the corpus files or, with --aligned, on the training views."""
    import json

    from .corpus_card import format_size_auc, read_records

    views = AugmentConfig(crop=_crop_range(crop), reencode_prob=reencode_prob)  # a bad --crop fails first
    try:
        records = read_records(corpus, split)
    except ValueError as exc:
        fail(str(exc))
    if not records:
        fail(f"{corpus}: no images in split {split!r}")
    if aligned:
        from .alignment import aligned_records

        with _progress_bar(progress) as bar:
            task = bar.add_task("aligned views", total=min(sample or len(records), len(records)))
            records = aligned_records(corpus, records, views, sample or None,
                                      progress=lambda n: bar.advance(task, n))
    what = f"training views (crop {crop}, re-encoded with p={reencode_prob:g})" if aligned else "files"
    check = {"split": split, "what": what, **format_size_auc(records)}
    if as_json:
        sys.stdout.write(json.dumps(check, indent=2) + "\n")
        return
    table = Table(title=f"{check['what']} of {split}: ROC AUC from format and size alone ({check['images']})")
    table.add_column("classifier")
    table.add_column("features")
    table.add_column("AUC", justify="right")
    for features, auc in check.get("gradient_boosting_auc", {}).items():
        table.add_row("gradient boosting", features, f"{auc:.3f}")
    if "logistic_regression_auc" in check:
        table.add_row("logistic regression", "format and size", f"{check['logistic_regression_auc']:.3f}")
    out.print(table)


def main() -> None:
    """The `aidetect` command. On the way out, the collector is told to leave every live object alone: the
    interpreter's teardown otherwise walks all of torch's objects once more, a fifth of a one-image scan's wall
    time on a 2-core CPU (README, "Speed and memory")."""
    try:
        app()
    finally:
        gc.freeze()
