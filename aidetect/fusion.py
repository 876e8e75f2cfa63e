"""Attention-based Feature Fusion Module (AFFM): self-attention over [patch tokens..., global token]."""

from __future__ import annotations

import torch
from torch import nn


class FusionLayer(nn.Module):
    """x = LN(x + MHA(x)); x = LN(x + W2 ReLU(W1 x)). Submodule names follow the published checkpoints."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.mha(x, x, x, need_weights=need_weights, average_attn_weights=True)
        x = self.ln1(x + attended)
        x = self.ln2(x + self.fc2(torch.relu(self.fc1(x))))
        return x, weights


class AttentionFusion(nn.Module):
    """A stack of FusionLayers; returns the final global token (the last one) and, on request,
    each layer's head-averaged attention of the global token to every token (layers x N x T)."""

    def __init__(self, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(dim, heads) for _ in range(layers))

    def forward(self, tokens: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention = []
        for layer in self.layers:
            tokens, weights = layer(tokens, need_weights)
            if need_weights:
                attention.append(weights[:, -1, :])
        return tokens[:, -1], (torch.stack(attention) if need_weights else None)
