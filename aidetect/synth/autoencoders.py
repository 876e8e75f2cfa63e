"""Small image-to-image autoencoders whose decoders upsample the way generators do.

Passing a real photo through one of them leaves the content and replaces the pixels by what a
generator's upsampling path produces (AutoGAN, Zhang et al. 2019; aligned datasets, Rajan et al.
2025). Each family differs only in how its decoder goes back to full resolution, which is the trace
a detector should learn. The registry works like the backbone registry: `build_autoencoder(name)`.

Most families are trained here (fit.py). A pretrained family is a real generator's autoencoder instead
(taef2: FLUX.2's tiny autoencoder, taesd.py): it is never trained, and its weights are read only from a
folder the user names (`load_pretrained`), never downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from .base import Autoencoder, WeightsError
from .taesd import TinyAutoencoder

WIDE, NARROW = 64, 32  # channels below full resolution, and at full resolution (where convolutions cost most)


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2 if stride == 1 else 1)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _encoder(factor: int, latent: int) -> nn.Sequential:
    """A patchifying encoder (one factor x factor stride-`factor` convolution, then a 3x3 one):
    shallow, so it trains in minutes on a CPU; the decoder, not the encoder, leaves the trace."""
    return nn.Sequential(nn.Conv2d(3, WIDE, factor, stride=factor), _act(), _conv(WIDE, WIDE), _act(),
                         _conv(WIDE, latent))


def _upsample(kind: str, cin: int, cout: int) -> list[nn.Module]:
    """One 2x upsampling step of a decoder, as the named generator family does it."""
    if kind == "transposed":
        return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), _act()]
    return [nn.Upsample(scale_factor=2, mode=kind), _conv(cin, cout), _act()]


def _two_step(kind: str, latent: int = 64) -> Autoencoder:
    """4x: two upsampling steps of one kind (transposed, nearest or bilinear)."""
    decoder = nn.Sequential(_conv(latent, WIDE), _act(), *_upsample(kind, WIDE, WIDE),
                            *_upsample(kind, WIDE, NARROW), _conv(NARROW, 3))
    return Autoencoder(_encoder(4, latent), decoder, 4)


def _pixel_shuffle(latent: int = 64) -> Autoencoder:
    """Sub-pixel convolution (ESPCN): the last convolution predicts 4x4 pixels per code position."""
    decoder = nn.Sequential(_conv(latent, WIDE), _act(), _conv(WIDE, 3 * 16), nn.PixelShuffle(4))
    return Autoencoder(_encoder(4, latent), decoder, 4)


def _latent_diffusion(latent: int = 64) -> Autoencoder:
    """A latent-diffusion-style autoencoder: an 8x downsampled latent decoded by three nearest-neighbour
    + convolution steps, as SD's decoder upsamples. The latent keeps 64 channels (SD uses 4, SD3 16)
    so that a network this small can learn to reconstruct sharply on a CPU."""
    layers: list[nn.Module] = [_conv(latent, WIDE), _act(), _conv(WIDE, WIDE), _act()]
    for cin, cout in ((WIDE, WIDE), (WIDE, WIDE), (WIDE, NARROW)):
        layers += _upsample("nearest", cin, cout)
    layers.append(_conv(NARROW, 3))
    return Autoencoder(_encoder(8, latent), nn.Sequential(*layers), 8)


@dataclass(frozen=True)
class AutoencoderSpec:
    name: str
    build: Callable[[], Autoencoder]
    perceptual: bool  # trained with a perceptual loss as well, not pixels alone
    adversarial: bool  # and against a patch discriminator (fit.PatchDiscriminator)
    target_psnr: float  # dB on held-out photos at which training may stop (an 8x latent keeps less:
    # Stable Diffusion's own kl-f8 autoencoder scores 23.4 dB on COCO, per its model card)
    description: str
    weights: tuple[str, ...] = ()  # a pretrained family's files (encoder, decoder), read from the user's folder
    source: str = ""  # where those files come from


def _taef2() -> Autoencoder:
    return TinyAutoencoder(latent=32, global_norm=True)


AUTOENCODERS: dict[str, AutoencoderSpec] = {
    spec.name: spec
    for spec in (
        AutoencoderSpec("transposed", lambda: _two_step("transposed"), False, False, 32.0,
                        "4x, two transposed convolutions (DCGAN, CycleGAN)"),
        AutoencoderSpec("nearest", lambda: _two_step("nearest"), False, False, 32.0,
                        "4x, nearest-neighbour upsampling + convolution (StyleGAN-like resize-conv)"),
        AutoencoderSpec("bilinear", lambda: _two_step("bilinear"), False, False, 32.0,
                        "4x, bilinear upsampling + convolution (StyleGAN2, many diffusion U-Nets)"),
        AutoencoderSpec("pixelshuffle", _pixel_shuffle, False, False, 32.0, "4x, sub-pixel convolution (ESPCN, some SR GANs)"),
        AutoencoderSpec("ldm8", _latent_diffusion, True, True, 26.0,
                        "8x, 64-channel latent, nearest-conv decoder, perceptual + patch-GAN losses (LDM autoencoder)"),
        # taef2's target is ldm8's: an 8x latent (weights/MODEL_CARD.md has what it scored here)
        AutoencoderSpec("taef2", _taef2, False, False, 26.0,
                        "8x, FLUX.2's tiny autoencoder (TAESD, 32-channel latent, nearest-conv decoder), pretrained",
                        ("taef2_encoder.pth", "taef2_decoder.pth"), "github.com/madebyollin/taesd, commit 5cccb12dc720, MIT licence"),
    )
}


def build_autoencoder(name: str) -> Autoencoder:
    """A family's network, with random weights (a pretrained family's too: `load_pretrained` loads them)."""
    try:
        return AUTOENCODERS[name].build()
    except KeyError:
        raise ValueError(f"unknown autoencoder {name!r}; choose from {', '.join(AUTOENCODERS)}") from None


def default_archs(pretrained: bool) -> tuple[str, ...]:
    """The families a run makes when none is named: every trained one, and the pretrained ones when a
    folder of weights is given."""
    return tuple(name for name, spec in AUTOENCODERS.items() if pretrained or not spec.weights)


def load_pretrained(name: str, folder: str | Path | None) -> tuple[Autoencoder, dict[str, str]]:
    """A pretrained family's network with its weights from `folder` (tensors only, keys and shapes
    checked), in eval mode, and each file's name -> SHA-256. Errors are WeightsError, one line each."""
    spec = AUTOENCODERS[name]
    files = " and ".join(spec.weights)
    if folder is None:
        raise WeightsError(f"{name} is pretrained: give the folder that holds {files} (--pretrained-dir); "
                           f"they come from {spec.source}")
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"{folder}: not a folder (the pretrained folder should hold {files})")
    for file in spec.weights:
        if not (folder / file).is_file():
            raise WeightsError(f"{folder / file}: not found ({name} needs {files}, from {spec.source})")
    model = build_autoencoder(name)
    digests = model.load_weights(*(folder / file for file in spec.weights))
    return model.eval(), digests
