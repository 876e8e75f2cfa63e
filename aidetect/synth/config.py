"""The settings of `aidetect synth`, torch-free so that the CLI reads its defaults from them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FitConfig:
    """Training one autoencoder family until its reconstructions are sharp (fit.py)."""

    crop: int = 64  # training crops (native pixels, never resized)
    batch_size: int = 16
    lr: float = 1e-3
    check_every: int = 250
    max_steps: int = 20000  # a safety net: training stops on quality, not on time
    min_sharpness: float = 0.85  # and at most 1 / min_sharpness: over-sharpening is a trace too
    adversarial_weight: float = 0.5  # of the patch discriminator's loss in the decoder's (LDM's configs: 0.5)
    adversarial_from: int = 30000  # the discriminator joins once pixel and perceptual losses have converged,
    # as in LDM's autoencoder configs; earlier it fights the content
    seed: int = 0  # crops and initial weights; on a GPU some kernels still vary run to run
    device: str = "cpu"  # or auto, cuda, cuda:N, mps (runtime.resolve_device)


@dataclass
class SynthConfig:
    archs: tuple[str, ...] = ()  # autoencoder families to run (empty: all of them)
    fit: FitConfig = field(default_factory=FitConfig)
    copy_reals: bool = False  # copy the reals into OUT_ROOT/0_real instead of linking them
    pretrained_dir: str | None = None  # the folder holding pretrained families' weights (taef2); never downloaded
