"""What every autoencoder family of `aidetect synth` is: an encoder to a downsampled code and a decoder back
to pixels (the registry, autoencoders.py, and the pretrained TAEF2, taesd.py, both build on it)."""

from __future__ import annotations

import torch
from torch import nn


class Autoencoder(nn.Module):
    """Encoder to a downsampled code, decoder back to RGB; input and output in [0, 1]. Input sides
    must be multiples of `factor` (the synthesiser pads)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, factor: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.factor = encoder, decoder, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x * 2 - 1)) * 0.5 + 0.5


class WeightsError(ValueError):
    """A pretrained family's weights missing, unreadable or not its architecture's (one line)."""
