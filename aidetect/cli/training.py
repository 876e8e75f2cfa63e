"""Commands that fit a model: `train` (frozen heads by default, or end to end) and `adapt`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..config import (AdaptConfig, AugmentConfig, FeatureLevels, FinetuneConfig, HeadConfig, ModelConfig, PatchStrategy,
                      TrainConfig)
from .common import (ADAPT, AUGMENT, HEADS, MODEL, TRAIN, Device, ShowProgress, Weights, Workers, crop_range, crop_text,
                     defaults, fail, finish, note, out, report_left_out, running)

FINE = defaults(FinetuneConfig)


def parse_root(spec: str) -> tuple[str, float]:
    """ROOT or ROOT:WEIGHT (the weight sets how often the root's images are drawn)."""
    root, sep, weight = spec.rpartition(":")
    if sep and root and weight.replace(".", "", 1).isdigit():
        return root, float(weight)
    return spec, 1.0


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
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help=f"Default {HEADS.epochs} ({FINE.epochs} with --finetune)."),
    lr: Optional[float] = typer.Option(None, "--lr", help=f"Default {HEADS.lr:g} ({FINE.lr:g} with --finetune)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=f"Default {HEADS.batch_size} (both)."),
    patience: Optional[int] = typer.Option(None, "--patience", min=1, help=f"Stop after this many epochs without a better score; default {HEADS.patience} ({FINE.patience} with --finetune)."),
    warmup_epochs: int = typer.Option(FINE.warmup_epochs, "--warmup-epochs", min=0, help="With --finetune: single-branch epochs on native 224 crops first."),
    freeze_backbone: bool = typer.Option(FINE.freeze_backbone, "--freeze-backbone", help="With --finetune: the fused epochs after the warm-up train only the heads."),
    micro_batch: int = typer.Option(FINE.micro_batch, "--micro-batch", min=1, help="With --finetune: images per step; gradients accumulate to --batch-size."),
    epoch_size: Optional[int] = typer.Option(None, "--epoch-size", min=1, help="With --finetune: samples drawn per epoch (default: every training image once)."),
    blur_prob: float = typer.Option(AUGMENT.blur_prob, "--blur-prob", min=0.0, max=1.0),
    jpeg_prob: float = typer.Option(AUGMENT.jpeg_prob, "--jpeg-prob", min=0.0, max=1.0),
    reencode_prob: float = typer.Option(AUGMENT.reencode_prob, "--reencode-prob", min=0.0, max=1.0, help="Re-encode both classes as JPEG (format alignment)."),
    rescale_prob: float = typer.Option(AUGMENT.rescale_prob, "--rescale-prob", min=0.0, max=1.0, help="Downscale both classes alike (resampling alignment)."),
    crop: str = typer.Option(crop_text(AUGMENT.crop), "--crop", help="Side range MIN,MAX of the random native-resolution square crop of each training view, or 'whole' for the image's whole shorter side (the square the global view of scan shows)."),
    flip: bool = typer.Option(AUGMENT.flip, "--flip/--no-flip"),
    seed: int = typer.Option(TRAIN.seed, "--seed"),
    device: Device = TRAIN.device,
    workers: int = typer.Option(TRAIN.workers, "--workers", "-j", min=0),
    resume: Optional[Path] = typer.Option(None, "--resume", help="With --finetune: continue the run in this folder (or last_state.pt). A frozen run resumes by itself: its descriptors are cached."),
    progress: ShowProgress = True,
) -> None:
    """Train the detector: by default the heads on a frozen ImageNet backbone, chosen on held-out generators
    (--select). --finetune trains end to end (multi-GPU: torchrun --nproc_per_node=N -m aidetect train ...)."""
    from ..checkpoint import CheckpointError
    from ..datasets import DatasetError
    from ..render.training import selection_table
    from ..training.train import Trainer, train_frozen

    if not resume and not roots:
        fail("give at least one training root, or --resume RUN_DIR")
    with running("train", progress, total=1, catch=(ValueError, CheckpointError, DatasetError)) as step:
        if resume:
            trainer = Trainer.resume(resume, on_progress=step.stage)
            best = trainer.fit()
        else:
            # --epochs, --lr, --batch-size and --patience set whichever loop runs; the other keeps its defaults
            chosen = {k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size),
                                        ("patience", patience)) if v is not None}
            parsed = [parse_root(r) for r in roots]
            config = TrainConfig(
                roots=[r for r, _ in parsed], root_weights=[w for _, w in parsed], out=str(out_dir),
                select=str(select) if select else None, val=str(val) if val else None, val_fraction=val_fraction,
                model=ModelConfig(backbone=backbone, patches=patches.value, features=features.value),
                pretrained=pretrained, init=str(init) if init else None, views=views,
                cache=str(cache) if cache else None, heads=HeadConfig(**({} if finetune else chosen)),
                finetune=finetune, seed=seed, device=device, workers=workers,
                finetuning=FinetuneConfig(warmup_epochs=warmup_epochs, freeze_backbone=freeze_backbone,
                                          micro_batch=micro_batch, epoch_size=epoch_size, **(chosen if finetune else {})),
                augment=AugmentConfig(blur_prob=blur_prob, jpeg_prob=jpeg_prob, reencode_prob=reencode_prob,
                                      rescale_prob=rescale_prob, crop=crop_range(crop), flip=flip))
            if finetune:
                trainer = Trainer(config, on_progress=step.stage)
                best = trainer.fit()
            else:
                report = train_frozen(config, step.stage)
    if resume or finetune:
        if trainer.world.main:
            summary = "none" if best is None else f"AP {best.ap:.4f}, accuracy {best.accuracy:.3f} on {best.n_real + best.n_fake} images"
            note(f"best validation: {summary}; checkpoint: {trainer.out / 'best.pt'}")
        return
    report_left_out(report.errors)
    out.print(selection_table(report.selection.per_generator, report.selection.mean_ap,
                              f"held-out generators ({select or val or 'split off the training roots'}), epoch {report.best_epoch}"))
    val_text = "" if report.val is None else f"; in-distribution val AP {report.val.ap:.3f}"
    note(f"{report.images} training images, threshold {report.threshold:.4f} (held-out reals){val_text}; "
         f"{report.seconds:.0f} s; checkpoint: {report.checkpoint}")


def adapt(
    real_dir: Path = typer.Argument(..., help="Real photos from your cameras or sources (a few dozen)."),
    fake_dir: Optional[Path] = typer.Argument(None, help="Images of the generator to adapt to (a few dozen). Without it, only the real-only branch is refitted, on REAL_DIR alone."),
    out_path: Path = typer.Option(..., "--out", "-o", help="The adapted checkpoint to write."),
    weights: Weights = None,
    holdout: float = typer.Option(ADAPT.holdout, "--holdout", min=0.1, max=0.9, help="Share of each class kept out of the refit, to measure it on (with FAKE_DIR; the real-only refit keeps the branch's own share, 15 %)."),
    views: int = typer.Option(ADAPT.views, "--views", min=1, help="Augmented views of each refit image (without FAKE_DIR: of each photo the real-only branch is refitted on)."),
    seed: int = typer.Option(ADAPT.seed, "--seed"),
    weight: float = typer.Option(0.25, "--weight", min=0.01, max=0.99, help="Without FAKE_DIR: the weight of your photos' density beside what the real-only branch knew (kept whole)."),
    device: Device = "auto",
    workers: Workers = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    progress: ShowProgress = True,
) -> None:
    """Refit a checkpoint's heads (and threshold) to a new generator and your cameras, in under a minute on a
    CPU; reports the AP before and after on a held-out share of what it was given. With real photos alone
    (no FAKE_DIR), refit the real-only branch to your cameras, so that they stop looking unusual to it."""
    import json

    from ..checkpoint import CheckpointError
    from ..training import adapt as adaptation

    if fake_dir is None:
        with running("refitting the real-only branch", progress, catch=(CheckpointError, ValueError)) as step:
            real_report = adaptation.adapt_real_only(real_dir, out_path, weights, weight, views, step.stage)
        report_left_out(real_report.errors)
        if as_json:
            sys.stdout.write(json.dumps(real_report.to_dict(), indent=2) + "\n")
        else:
            before = "" if real_report.flagged_before is None else f"{real_report.flagged_before:.0%} -> "
            out.print(f"real-only branch refitted on {real_report.fitted} photos; of the {real_report.held_out} held "
                      f"out, {before}{real_report.flagged_after:.0%} look unusual to it; {real_report.seconds:.0f} s; "
                      f"wrote {out_path}", highlight=False, markup=False)
        finish(real_report.errors)
        return
    config = dataclasses.replace(AdaptConfig(), holdout=holdout, views=views, seed=seed)
    with running("describing", progress, catch=(CheckpointError, ValueError)) as step:
        report = adaptation.adapt(real_dir, fake_dir, out_path, weights, config, device, workers, step.advance)
    report_left_out(report.errors)
    if report.held_out[0] < config.steady_threshold_reals:
        note(f"note: the threshold rests on {report.held_out[0]} held-out real images, too few to be steady; "
             f"set it on more of your real photos: aidetect calibrate REAL_DIR -w {out_path} -o {out_path}")
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        change = "helped" if report.ap_after > report.ap_before else "did not help"
        out.print(f"refitted on {report.fitted[0]} real / {report.fitted[1]} generated images; on the "
                  f"{report.held_out[0]} / {report.held_out[1]} held out, AP {report.ap_before:.3f} -> "
                  f"{report.ap_after:.3f} (adapting {change}); threshold {report.threshold:.4f}; "
                  f"{report.seconds:.0f} s; wrote {out_path}", highlight=False, markup=False)
    finish(report.errors)
