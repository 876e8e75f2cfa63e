"""The Tiny AutoEncoder of FLUX.2's latent space (TAEF2), a real generator's decoder for `aidetect synth`.

Architecture after madebyollin/taesd (https://github.com/madebyollin/taesd, commit 5cccb12dc720,
`taesd.py`; MIT licence, (c) 2023 Ollin Boer Bohan), written here in this project's style. TAESD is
a distilled stand-in for a latent diffusion model's VAE: an 8x encoder and decoder of plain 3x3
convolutions, the decoder going back to full resolution by three nearest-neighbour + convolution
steps. Its FLUX.2 weights (`taef2_encoder.pth`, `taef2_decoder.pth`, same repository and commit)
use a 32-channel latent and add a global pooling-and-norm branch (1x1 convolutions around a
GroupNorm) to the three blocks at latent resolution.

Conventions, from the reference: pixels in [0, 1] in and out (not [-1, 1]); the latent is used as it
is (the reference's `latent_magnitude` 3 and `latent_shift` 0.5 only map latents to 8-bit images for
storage, which a reconstruction does not need); the decoder first soft-clamps the latent to
(-3, 3) with 3 tanh(x / 3), and its output, unbounded, is clamped to [0, 1] by the caller.

Large images are processed in tiles, with the same result as in one piece (up to float rounding):
every layer is local except the GroupNorms, which see a whole latent. So the encoder runs in tiles
up to its latent-resolution blocks, and the decoder from the end of them; those blocks, at 1/64 of
the pixels, run on the whole latent. Tiles overlap by more than the receptive field of the local
part (about 8 latent positions either side), and each keeps only its own centre. Memory then
follows the tile, not the image; time follows the pixels, about 0.5 tera multiply-adds per megapixel
plus the tiles' overlaps (weights/MODEL_CARD.md has what both measured here).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from .base import Autoencoder, WeightsError

FACTOR = 8  # pixels per latent position, in each direction
WIDTH = 64  # channels of every hidden layer
TILE = 128  # latent positions per tile side (1024 pixels)
MARGIN = 10  # latent positions of overlap on each side of a tile: more than the local parts' reach (about 8)


def _conv(cin: int, cout: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """3 tanh(x / 3): the decoder's first step, bounding the latent it is given to (-3, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block of three 3x3 convolutions; with `global_norm`, a branch of 1x1 convolutions around
    a 4-group GroupNorm is first added to the input (FLUX.2's variant: it mixes in whole-latent
    statistics). Attribute names follow the reference, so its state dicts load as they are."""

    def __init__(self, cin: int, cout: int, global_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(cin, cout), nn.ReLU(), _conv(cout, cout), nn.ReLU(), _conv(cout, cout))
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if global_norm:
            hidden = 4 * cin
            self.pool = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.GroupNorm(4, hidden),
                                      nn.ReLU(inplace=True), nn.Conv2d(hidden, cin, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def _stage(count: int, global_norm: bool = False) -> list[nn.Module]:
    return [Block(WIDTH, WIDTH, global_norm) for _ in range(count)]


def encoder(latent: int, global_norm: bool) -> nn.Sequential:
    """Pixels in [0, 1] -> latent at 1/8 resolution. Layers 0-10 are local; 11-14 work at latent resolution."""
    return nn.Sequential(
        _conv(3, WIDTH), *_stage(1),
        _conv(WIDTH, WIDTH, stride=2, bias=False), *_stage(3),
        _conv(WIDTH, WIDTH, stride=2, bias=False), *_stage(3),
        _conv(WIDTH, WIDTH, stride=2, bias=False), *_stage(3, global_norm),
        _conv(WIDTH, latent))


def decoder(latent: int, global_norm: bool) -> nn.Sequential:
    """Latent -> pixels (about [0, 1], unclamped). Layers 0-5 work at latent resolution; 6-19 are local."""
    layers: list[nn.Module] = [SoftClamp(), _conv(latent, WIDTH), nn.ReLU(), *_stage(3, global_norm)]
    for blocks in (3, 3, 1):  # at 1/4, 1/2 and full resolution
        layers += [nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False), *_stage(blocks)]
    layers.append(_conv(WIDTH, 3))
    return nn.Sequential(*layers)


ENCODER_LOCAL, DECODER_LOCAL = 11, 6  # where the encoder's local layers end, where the decoder's begin


def _tiled(layers: nn.Module, x: torch.Tensor, cell_in: int, cell_out: int, cells: int, margin: int) -> torch.Tensor:
    """`layers` (local: each output cell depends on inputs within `margin` cells) applied to x in tiles
    of cells x cells, each read with `margin` cells of context. A cell is cell_in input pixels and
    cell_out output pixels on a side; x's sides are whole cells."""
    rows, cols = x.shape[-2] // cell_in, x.shape[-1] // cell_in
    if rows <= cells and cols <= cells:
        return layers(x)
    out: torch.Tensor | None = None
    for top in range(0, rows, cells):
        for left in range(0, cols, cells):
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            t1, l1 = min(top + cells + margin, rows), min(left + cells + margin, cols)
            y = layers(x[..., t0 * cell_in:t1 * cell_in, l0 * cell_in:l1 * cell_in])
            if out is None:
                out = y.new_empty(*y.shape[:2], rows * cell_out, cols * cell_out)
            height, width = min(cells, rows - top) * cell_out, min(cells, cols - left) * cell_out
            dy, dx = (top - t0) * cell_out, (left - l0) * cell_out
            out[..., top * cell_out:top * cell_out + height, left * cell_out:left * cell_out + width] = \
                y[..., dy:dy + height, dx:dx + width]
    return out


class TinyAutoencoder(Autoencoder):
    """TAESD's encoder and decoder (`latent` channels; `global_norm` for the FLUX.2 variant) as a synth
    family: forward on pixels in [0, 1] whose sides are multiples of `factor` (the synthesiser pads),
    with no [-1, 1] mapping. `tile` and `margin` are in latent positions."""

    def __init__(self, latent: int = 32, global_norm: bool = True, tile: int = TILE, margin: int = MARGIN) -> None:
        super().__init__(encoder(latent, global_norm), decoder(latent, global_norm), FACTOR)
        self.tile, self.margin = tile, margin

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % FACTOR or x.shape[-1] % FACTOR:
            raise ValueError(f"image sides must be multiples of {FACTOR}, not {tuple(x.shape[-2:])}")
        features = _tiled(self.encoder[:ENCODER_LOCAL], x, FACTOR, 1, self.tile, self.margin)
        return self.encoder[ENCODER_LOCAL:](features)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        features = self.decoder[:DECODER_LOCAL](latent)
        return _tiled(self.decoder[DECODER_LOCAL:], features, 1, FACTOR, self.tile, self.margin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last: faster on a CPU, same result to float rounding
        return self.decode(self.encode(x.contiguous(memory_format=torch.channels_last)))

    def load_weights(self, encoder_file: str | Path, decoder_file: str | Path) -> dict[str, str]:
        """Load the reference's two state dicts (tensors only: `weights_only=True`), after checking that
        they hold exactly this architecture's keys and shapes. Returns each file's name -> SHA-256."""
        digests = {}
        for part, path in ((self.encoder, Path(encoder_file)), (self.decoder, Path(decoder_file))):
            digests[path.name] = _load_state(part, path)
        return digests


def _load_state(module: nn.Module, path: Path) -> str:
    if not path.is_file():
        raise WeightsError(f"{path}: not found")
    data = path.read_bytes()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a checkpoint, or one that needs pickled code: both refused alike
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"{path}: keys do not match the architecture ({len(missing)} missing, e.g. "
                           f"{missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]})")
    wrong = [k for k in expected if state[k].shape != expected[k].shape]
    if wrong:
        raise WeightsError(f"{path}: {len(wrong)} tensors have the wrong shape, e.g. {wrong[0]} "
                           f"{tuple(state[wrong[0]].shape)} instead of {tuple(expected[wrong[0]].shape)}")
    module.load_state_dict({k: v.float() for k, v in state.items()})
    return hashlib.sha256(data).hexdigest()
