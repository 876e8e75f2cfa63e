"""`aidetect synth`: aligned fakes, each real photo reconstructed by generator-like autoencoders."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from ..synth.config import FitConfig
from .common import FIT, Device, fail, note, out, running


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
    from ..datasets import DatasetError
    from ..render.synth import AUC_NOTE, synth_table
    from ..synth.autoencoders import AUTOENCODERS
    from ..synth.build import synthesize
    from ..synth.config import SynthConfig

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
    with running("synth", total=1, catch=(ValueError, DatasetError, OSError)) as step:
        report = synthesize(real_root, out_root, config, step.stage)
    for path, reason in report.errors:
        note(f"{path}: {reason}")
    for row in report.archs:
        folder = out_root / row.folder
        if row.reused:
            note(f"{row.fit.arch}: kept {row.reused} fakes written earlier with the same weights")
        if row.weights and not row.fit.reached:
            note(f"{row.fit.arch}: pretrained, but not sharp by its targets (held-out PSNR {row.fit.psnr:.1f} dB, "
                 f"sharpness {row.fit.sharpness:.2f}); its fakes are in {folder}, which train ignores.")
        elif not row.fit.reached:
            note(f"{row.fit.arch}: not sharp by its targets after {row.fit.steps} steps; its fakes are in {folder}, "
                 f"which train ignores. Rerun with a higher --max-steps to train it on.")
    if as_json:
        out.print_json(data=report.to_dict())
        return
    out.print(synth_table(report, str(out_root)))
    out.print(AUC_NOTE, highlight=False)
