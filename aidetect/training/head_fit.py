"""Training the heads of a detector whose backbone stays frozen: the projection, the attention fusion
and the classifier learn on cached descriptors (features.py), in minutes on a CPU.

What is kept is chosen on images of generators and real sources held out of training (the
leave-generator-out score: each held-out generator's fakes against every held-out real, the mean
of their APs), never on the training generators: a detector is only as good as it is on generators
it has not seen. The threshold is set on the held-out reals, for a target false-positive rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from ..config import HeadConfig
from ..evaluation.metrics import balanced_ap, fpr_threshold
from ..model import FusedDetector
from .descriptor_cache import FeatureSet


@dataclass
class Heldout:
    """Images to choose on: their descriptors (one clean view each) and, per image, its generator
    (for a fake) or its source (for a real)."""

    features: FeatureSet
    groups: list[str]


@dataclass
class Selection:
    """How a model does on the held-out images."""

    mean_ap: float  # mean over held-out generators of the class-balanced AP(its fakes vs all held-out reals)
    per_generator: dict[str, float]
    pooled_ap: float

    def to_dict(self) -> dict:
        return {"mean_ap": self.mean_ap, "per_generator": self.per_generator, "pooled_ap": self.pooled_ap}


@dataclass
class HeadResult:
    best_epoch: int  # the epoch kept (the last one without held-out images)
    selection: Selection | None  # its held-out score
    threshold: float | None  # for the target false-positive rate on the held-out reals
    history: list[dict] = field(default_factory=list)


def leave_generator_out(labels: np.ndarray, scores: np.ndarray, groups: Sequence[str]) -> Selection:
    """Class-balanced AP of each generator's fakes against all the reals (metrics.balanced_ap), their mean,
    and the plain AP of everything pooled."""
    reals = labels == 0
    per_generator = {}
    for name in sorted({g for g, label in zip(groups, labels) if label == 1}):
        mine = reals | np.array([g == name and label == 1 for g, label in zip(groups, labels)])
        per_generator[name] = balanced_ap(labels[mine], scores[mine])
    return Selection(float(np.mean(list(per_generator.values()))), per_generator,
                     float(average_precision_score(labels, scores)))


@torch.no_grad()
def logits_of(model: FusedDetector, features: FeatureSet, view: int = 0, chunk: int = 512) -> np.ndarray:
    """The model's logits for one view of every image (the head alone: descriptors are cached)."""
    model.eval()
    out = [model.head(torch.from_numpy(features.global_[i:i + chunk, view]).float(),
                      torch.from_numpy(features.patches[i:i + chunk, view]).float())[0]
           for i in range(0, len(features), chunk)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def standardise(model: FusedDetector, features: FeatureSet, chunk: int = 256) -> None:
    """Set the model's descriptor scaler to the mean and spread of these descriptors (global and patches,
    every view), as a scaler before a linear model would be fitted. Summed in chunks: all of a large
    corpus's descriptors at once would take gigabytes."""
    dim = features.global_.shape[-1]
    total, squares, count = np.zeros(dim), np.zeros(dim), 0
    for start in range(0, len(features), chunk):
        rows = np.concatenate([features.global_[start:start + chunk].reshape(-1, dim),
                               features.patches[start:start + chunk].reshape(-1, dim)]).astype(np.float64)
        total += rows.sum(axis=0)
        squares += np.square(rows).sum(axis=0)
        count += len(rows)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    model.descriptor_mean.copy_(torch.from_numpy(mean).float())
    model.descriptor_std.copy_(torch.from_numpy(std).float().clamp_min(1e-6))


def head_parameters(model: FusedDetector) -> list[torch.nn.Parameter]:
    return [p for module in (model.embed_proj, model.fusion, model.classifier) for p in module.parameters()]


def fit_heads(model: FusedDetector, train: FeatureSet, heldout: Heldout | None, config: HeadConfig = HeadConfig(),
              order: Callable[[int], np.ndarray] | None = None, seed: int = 0,
              on_epoch: Callable[[dict], None] | None = None, fit_scaler: bool = True) -> HeadResult:
    """Train the heads on `train`'s views, keep the epoch with the best leave-generator-out score on
    `heldout`, and set the threshold on its reals; without `heldout`, train every epoch and keep the last.
    `order(epoch)` gives the images of an epoch (default: each once, shuffled); the classes weigh alike
    in the loss whatever their counts. `fit_scaler`: set the descriptor scaler from `train` first."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 11])
    if fit_scaler:
        standardise(model, train)
    parameters = head_parameters(model)
    optimiser = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    labels = torch.from_numpy(train.labels).float()
    n_fake = float(train.labels.sum())
    class_weight = torch.tensor([len(train) / (2 * (len(train) - n_fake)), len(train) / (2 * n_fake)])
    best, best_state, stale, history = None, None, 0, []
    for epoch in range(config.epochs):
        model.train()
        images = order(epoch) if order else rng.permutation(len(train))
        views = rng.integers(train.global_.shape[1], size=len(images))
        total = 0.0
        for start in range(0, len(images), config.batch_size):
            index, view = images[start:start + config.batch_size], views[start:start + config.batch_size]
            logits, _ = model.head(torch.from_numpy(train.global_[index, view]).float(),
                                   torch.from_numpy(train.patches[index, view]).float())
            target = labels[index]
            loss = F.binary_cross_entropy_with_logits(logits, target, weight=class_weight[target.long()])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(index)
        record = {"epoch": epoch, "train_loss": total / len(images)}
        history.append(record)
        if heldout is None:
            if on_epoch:
                on_epoch(record)
            continue
        selection = leave_generator_out(heldout.features.labels, logits_of(model, heldout.features), heldout.groups)
        record["heldout"] = selection.to_dict()
        if on_epoch:
            on_epoch(record)
        if best is None or selection.mean_ap > best[1].mean_ap:
            best, best_state, stale = (epoch, selection), [p.detach().clone() for p in parameters], 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if heldout is None:
        return HeadResult(len(history) - 1, None, None, history)
    with torch.no_grad():
        for parameter, value in zip(parameters, best_state):
            parameter.copy_(value)
    scores = probabilities(model, heldout.features)
    return HeadResult(best[0], best[1], fpr_threshold(scores[heldout.features.labels == 0], config.target_fpr), history)


def probabilities(model: FusedDetector, features: FeatureSet) -> np.ndarray:
    """P(generated) of one clean view of every image, as the engine gives it (the checkpoint's logit bias aside)."""
    return 1 / (1 + np.exp(-logits_of(model, features).astype(np.float64)))
