"""Training one autoencoder on real photos until its reconstructions are sharp.

An under-trained decoder blurs, and a detector trained on blurred "fakes" learns "blurry means
fake" instead of the upsampling trace. So training stops on quality, not on time: every
`check_every` steps the held-out photos are reconstructed and training ends once the PSNR reaches
the family's target *and* the reconstructions keep as much high-frequency energy as the inputs
(`sharpness` = Laplacian energy of output / input). `max_steps` is only a safety net; a result
that hit it says so (`reached=False`).

Families marked `adversarial` also learn against a patch discriminator, as the autoencoders of latent
diffusion models do (VQGAN, Esser et al. 2021; LDM, Rombach et al. 2022): an 8x latent cannot keep
every detail, and pixel and perceptual losses then settle on a blur, where the discriminator asks for
texture that looks like a photo's.

A pretrained family (a real generator's autoencoder) is not trained: `check_pretrained` gives it the
same held-out check, so its result reads like a trained family's, with 0 steps.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import build_backbone, get_backbone_spec
from ..runtime import resolve_device
from ..training.augment import random_crop
from .autoencoders import AUTOENCODERS, Autoencoder, build_autoencoder
from .config import FitConfig


@dataclass
class FitResult:
    arch: str
    steps: int
    seconds: float
    psnr: float  # dB on the held-out crops, at the last check
    sharpness: float  # Laplacian energy of reconstructions / of the inputs, held-out crops
    reached: bool  # the quality targets were met before max_steps

    def to_dict(self) -> dict:
        return asdict(self)


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """Per-channel 3x3 Laplacian (valid region): the high frequencies that blur removes."""
    kernel = _LAPLACIAN.to(x).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, kernel, groups=x.shape[1])


def luminance(x: torch.Tensor) -> torch.Tensor:
    """B x 1 x H x W luma of B x 3 x H x W RGB (ITU-R BT.601 weights)."""
    return (x * torch.tensor([0.299, 0.587, 0.114]).to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def laplacian_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean squared Laplacian of the luminance, one value per image: a standard sharpness measure."""
    return laplacian(luminance(x)).pow(2).mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for pixels in [0, 1]."""
    mse = (a - b).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def random_crops(images: list[np.ndarray], rng: np.random.Generator, count: int, side: int) -> torch.Tensor:
    """`count` random side x side crops in [0, 1], from images at least `side` pixels on each edge."""
    crops = [random_crop(images[index], rng, (side, side)) for index in rng.integers(len(images), size=count)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


class PerceptualLoss(nn.Module):
    """Distance between early EfficientNet-Lite0 features (ImageNet weights, offline), each channel
    normalised as in LPIPS: it rewards texture that looks like the input, not only matching means.
    Levels 0, 2 and 3 of the backbone: the stem and the ends of its second and third stages."""

    LEVELS = (0, 2, 3)

    def __init__(self) -> None:
        super().__init__()
        spec = get_backbone_spec("efficientnet_lite0")
        self.net = build_backbone("efficientnet_lite0", pretrained=True).eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1))

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = self.net((x - self.mean) / self.std, stop=max(self.LEVELS) + 1)
        return [f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-8) for f in (maps[i] for i in self.LEVELS)]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum((a - b).abs().mean() for a, b in zip(self._features(output), self._features(target)))


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): one real-or-generated logit per 18-pixel patch, so it judges
    texture, not content. Spectral normalisation bounds its slope, the hinge loss's usual companion
    (the game can still collapse: the quality check then keeps the fakes out of training)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            norm(nn.Conv2d(3, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            norm(nn.Conv2d(2 * width, 1, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


class _Adversary:
    """The discriminator and its optimiser; `generator_loss` is the term added to the decoder's loss."""

    def __init__(self, device: torch.device) -> None:
        self.net = PatchDiscriminator().to(device).train()
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def generator_loss(self, output: torch.Tensor) -> torch.Tensor:
        self.net.requires_grad_(False)
        loss = -self.net(output).mean()
        self.net.requires_grad_(True)
        return loss

    def step(self, output: torch.Tensor, real: torch.Tensor) -> None:
        """One hinge-loss step of the discriminator on this batch."""
        loss = F.relu(1 - self.net(real)).mean() + F.relu(1 + self.net(output.detach())).mean()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()


def _check(model: Autoencoder, held_out: torch.Tensor) -> tuple[float, float]:
    training = model.training
    model.eval()
    with torch.no_grad():
        output = model(held_out).clamp(0, 1)
    model.train(training)
    sharpness = laplacian_energy(output).sum() / laplacian_energy(held_out).sum()
    return float(psnr(output, held_out).mean()), float(sharpness)


def _check_crops(held_out: list[np.ndarray], config: FitConfig) -> torch.Tensor:
    """The held-out crops every family is checked on: 32, twice the training crop, from the check seed."""
    return random_crops(held_out, np.random.default_rng([config.seed, 1]), 32, 2 * config.crop)


def _sharp(arch: str, quality: float, sharpness: float, config: FitConfig) -> bool:
    """The quality targets: the family's PSNR, and sharpness within min_sharpness of the inputs' either way."""
    return quality >= AUTOENCODERS[arch].target_psnr and config.min_sharpness <= sharpness <= 1 / config.min_sharpness


def check_pretrained(arch: str, model: Autoencoder, held_out: list[np.ndarray], config: FitConfig) -> FitResult:
    """A pretrained family's held-out check (on the model's device), reported as a fit of 0 steps."""
    start = time.perf_counter()
    quality, sharpness = _check(model, _check_crops(held_out, config).to(next(model.parameters()).device))
    return FitResult(arch, 0, time.perf_counter() - start, quality, sharpness, _sharp(arch, quality, sharpness, config))


def fit_autoencoder(arch: str, train: list[np.ndarray], held_out: list[np.ndarray], config: FitConfig,
                    on_progress: Callable[[int, int], None] | None = None,
                    resume: tuple[Autoencoder, FitResult] | None = None) -> tuple[Autoencoder, FitResult]:
    """Train the family `arch` on random crops of `train` until sharp on crops of `held_out`.
    `resume` continues an earlier result that stopped at its step limit (with a fresh optimiser)."""
    spec = AUTOENCODERS[arch]
    if spec.weights:
        raise ValueError(f"{arch} is pretrained, not trained here (check_pretrained checks it)")
    seed = config.seed * 1000 + list(AUTOENCODERS).index(arch)
    torch.manual_seed(seed)
    device = resolve_device(config.device)
    check_crops = _check_crops(held_out, config).to(device)
    if resume:
        model, earlier = resume
        step, spent = earlier.steps, earlier.seconds
        rng = np.random.default_rng([seed, step])  # new crops, not a replay of the first steps
    else:
        model, step, spent = build_autoencoder(arch), 0, 0.0
        rng = np.random.default_rng(seed)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    perceptual = PerceptualLoss().to(device) if spec.perceptual else None
    adversary = _Adversary(device) if spec.adversarial else None
    start = time.perf_counter() - spent
    quality, sharpness, reached = 0.0, 0.0, False
    while step < config.max_steps and not reached:
        batch = random_crops(train, rng, config.batch_size, config.crop).to(device)
        output = model(batch)
        loss = F.l1_loss(output, batch) + F.l1_loss(laplacian(output), laplacian(batch))
        if perceptual is not None:
            loss = loss + perceptual(output, batch)
        adversarial = adversary is not None and step >= config.adversarial_from
        if adversarial:
            loss = loss + config.adversarial_weight * adversary.generator_loss(output)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if adversarial:
            adversary.step(output, batch)
        step += 1
        if step % config.check_every == 0 or step == config.max_steps:
            quality, sharpness = _check(model, check_crops)
            reached = _sharp(arch, quality, sharpness, config)
        if on_progress:
            on_progress(step, config.max_steps)
    model.cpu().eval()
    return model, FitResult(arch, step, time.perf_counter() - start, quality, sharpness, reached)
