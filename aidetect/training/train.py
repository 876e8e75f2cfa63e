"""Training the fused detector, two ways.

`train_frozen` (the default): the ImageNet backbone stays frozen; descriptors of augmented views are
cached (features.py) and the heads learn on them (heads.py), chosen on held-out generators. Minutes
on a CPU once the descriptors are cached; an interrupted extraction resumes from the cache.

`Trainer` (fine-tuning, `--finetune`): the paper's end-to-end recipe, on one CPU, one GPU or many
(torchrun). Each sample's crop and augmentation are drawn from (seed, epoch, index), so a run
repeats exactly whatever the number of workers or processes, and `--resume` continues where it stopped.

A run writes into its output folder:
  best.pt        the chosen checkpoint (aidetect format, ready for `scan`)
  last_state.pt  (fine-tuning) everything needed to resume exactly (model, optimiser, schedule, epoch, RNG)
  log.jsonl      one line per epoch (and, fine-tuning, per logged step)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_open
from ..checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from ..config import AugmentConfig, TrainConfig
from ..datasets import epoch_indices, group_of, labelled_images
from ..engine import Detector
from ..evaluation.metrics import Metrics, set_metrics
from ..images import ImageError, load_image
from ..model import FusedDetector
from ..runtime import World, autocast, backend_for, resolve_device
from ..transforms import global_view
from .augment import augment
from .descriptor_cache import DEFAULT_CACHE, FeatureSet, ViewRecipe, extract
from .head_fit import Heldout, Selection, fit_heads, probabilities

STATE_NAME, BEST_NAME, LOG_NAME = "last_state.pt", "best.pt", "log.jsonl"


class TrainImages(Dataset):
    """Labelled images -> (global view, native pixels, label), augmented from (seed, epoch, index)."""

    def __init__(self, samples: list[tuple[str, int]], augment_config: AugmentConfig, seed: int) -> None:
        self.samples = samples
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = 0
        self.warmup = False

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict | None:
        path, label = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        config = self.augment_config
        if self.warmup:  # the backbone learns on what the local branch sees: native 224 crops
            config = dataclasses.replace(config, crop=(224, 224))
        try:
            image = augment(load_image(path), rng, config)
        except ImageError:
            return None  # unreadable training files are skipped (reported once by `prepare`)
        pixels = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        return {"view": global_view(pixels), "pixels": pixels, "label": float(label)}


def collate(batch: list[dict | None]) -> dict | None:
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return {"views": torch.stack([b["view"] for b in batch]), "pixels": [b["pixels"] for b in batch],
            "labels": torch.tensor([b["label"] for b in batch])}


def split_validation(samples: list[tuple[str, int]], fraction: float, seed: int):
    """Deterministic held-out split, stratified by label."""
    rng = np.random.default_rng([seed, 99])
    train, val = [], []
    for label in (0, 1):
        items = [s for s in samples if s[1] == label]
        order = rng.permutation(len(items))
        cut = max(1, int(round(len(items) * fraction))) if items else 0
        val += [items[i] for i in order[:cut]]
        train += [items[i] for i in order[cut:]]
    return sorted(train), sorted(val)


@dataclass
class TrainingData:
    """The images of a run: training samples grouped by root with the roots' weights, the held-out
    images the model is chosen on, and the in-distribution validation images (if any)."""

    samples: list[tuple[Path, int]]
    groups: list[list[int]]  # indices into samples, one list per root
    root_weights: list[float]
    select: list[tuple[Path, int]]
    select_root: Path | None  # None when the selection images were split off the training roots
    val: list[tuple[Path, int]] | None


def gather(config: TrainConfig) -> TrainingData:
    """Find the run's images. Selection uses `select`, else `val`, else a share of the training roots
    split off by `val_fraction` (in-distribution: the weakest choice, for a quick start only)."""
    weights = config.root_weights or [1.0] * len(config.roots)
    if len(weights) != len(config.roots):
        raise ValueError("give one weight per training root")
    per_root = [labelled_images(root) for root in config.roots]
    for root, items in zip(config.roots, per_root):
        if not items:
            raise ValueError(f"{root}: no labelled images (expected 0_real/ and 1_fake/ folders)")
    val = labelled_images(config.val) if config.val else None
    chosen = config.select or config.val
    if chosen:
        select, select_root = labelled_images(chosen), Path(chosen)
    else:
        split = [split_validation(items, config.val_fraction, config.seed) for items in per_root]
        per_root, select, select_root = [s[0] for s in split], [v for s in split for v in s[1]], None
    if {label for _, label in select} != {0, 1}:
        raise ValueError("validation needs real and generated images (its AP chooses the checkpoint)")
    offsets = np.cumsum([0] + [len(items) for items in per_root])
    return TrainingData([s for items in per_root for s in items],
                        [list(range(offsets[i], offsets[i + 1])) for i in range(len(per_root))],
                        weights, select, select_root, val)


def validate(model: FusedDetector, samples: list[tuple[str, int]], device: torch.device, workers: int,
             batch_size: int) -> Metrics:
    """Every metric at threshold 0.5 on the validation images, through the same engine as `scan`."""
    info = CheckpointInfo(Path("<training>"), model.config, {"threshold": 0.5})
    # NCHW as in training: channels-last would convert the training weights in place and change the numerics
    detector = Detector(model, info, device=str(device), batch_size=batch_size, workers=workers, channels_last=False,
                        provenance=False)
    scored = [(p.probability, label) for p, (_, label) in zip(detector.predict([path for path, _ in samples]), samples)
              if p.ok]
    return set_metrics("val", [label for _, label in scored], [p for p, _ in scored], threshold=0.5)


class Trainer:
    def __init__(self, config: TrainConfig, on_progress: Callable[[str, int, int], None] | None = None) -> None:
        self.config = config
        self.world = World.from_env()
        self.device = resolve_device(self.world.device(config.device))
        self.world.join(backend_for(self.device))
        self.on_progress = on_progress or (lambda phase, done, total: None)
        self.out = Path(config.out)
        self._prepare_data()
        torch.manual_seed(config.seed)
        if config.init:
            self.model, _ = load_checkpoint(config.init)
        else:
            self.model = FusedDetector(config.model, pretrained_backbone=config.pretrained)
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.finetuning.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5,
                                                                    patience=config.finetuning.plateau_patience)
        self.epoch, self.step, self.best_ap, self.stale = 0, 0, -1.0, 0

    def _prepare_data(self) -> None:
        data = gather(self.config)
        self.samples, self.groups, self.root_weights = data.samples, data.groups, data.root_weights
        self.val_samples = data.select
        self.dataset = TrainImages(self.samples, self.config.augment, self.config.seed)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"config": self.config.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "step": self.step, "best_ap": self.best_ap, "stale": self.stale,
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.best_ap, self.stale = state["epoch"], state["step"], state["best_ap"], state["stale"]
        torch.set_rng_state(state["torch_rng"])

    @classmethod
    def resume(cls, path: str | os.PathLike, **kwargs) -> "Trainer":
        """Continue a run from its last_state.pt (or its folder) with the same config."""
        path = Path(path)
        path = path / STATE_NAME if path.is_dir() else path
        state = torch.load(path, map_location="cpu", weights_only=True)
        trainer = cls(TrainConfig.from_dict(state["config"]), **kwargs)
        trainer.load_state_dict(state)
        return trainer

    # -- loop -------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / LOG_NAME, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def _loader(self) -> DataLoader:
        config, fine = self.config, self.config.finetuning
        size = fine.epoch_size or len(self.samples)
        order = epoch_indices(self.groups, self.root_weights, config.seed, self.epoch, size)
        shard = self.world.take(order)
        return DataLoader(self.dataset, batch_size=fine.micro_batch, sampler=shard, collate_fn=collate,
                          num_workers=config.workers, persistent_workers=False)

    def _train_epoch(self) -> float:
        fine = self.config.finetuning
        warmup = self.epoch < fine.warmup_epochs
        frozen = fine.freeze_backbone and not warmup
        self.dataset.epoch, self.dataset.warmup = self.epoch, warmup
        self.model.train()
        self.model.backbone.train(not frozen)
        for parameter in self.model.backbone.parameters():
            parameter.requires_grad_(not frozen)
        network = self.model
        if self.world.size > 1:
            network = torch.nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=False)
        accumulate = max(1, fine.batch_size // (fine.micro_batch * self.world.size))
        loader = self._loader()
        total_loss, seen, started = 0.0, 0, time.time()
        self.optimizer.zero_grad(set_to_none=True)
        for micro, batch in enumerate(loader, start=1):
            if batch is None:
                continue
            views = batch["views"].to(self.device).float().div_(255)
            labels = batch["labels"].to(self.device)
            with autocast(self.device, None if self.device.type == "cpu" else torch.bfloat16):
                output = network(views, None if warmup else batch["pixels"])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(output.logits.float(), labels)
            (loss / accumulate).backward()
            total_loss += loss.item() * len(labels)
            seen += len(labels)
            if micro % accumulate == 0 or micro == len(loader):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                if self.step % fine.log_every == 0:
                    self._log({"step": self.step, "epoch": self.epoch, "loss": total_loss / max(seen, 1),
                               "lr": self.optimizer.param_groups[0]["lr"],
                               "images_per_s": seen * self.world.size / (time.time() - started),
                               "phase": "warmup" if warmup else "fused"})
            self.on_progress("warmup" if warmup else "train", micro, len(loader))
        self.world.sync_buffers(self.model)
        return total_loss / max(seen, 1)

    def _metadata(self, metrics: Metrics, elapsed: float) -> dict:
        config = self.config
        return {"name": f"aidetect-{config.model.backbone}-{config.model.patches}", "threshold": 0.5,
                "training_data": {"roots": config.roots, "root_weights": self.root_weights,
                                  "images": len(self.samples), "val": config.val or f"{config.val_fraction} held out"},
                "recipe": config.to_dict(), "epoch": self.epoch, "val_metrics": metrics.to_dict(),
                "training_seconds": round(elapsed), "device": str(self.device), "torch": str(torch.__version__)}

    def fit(self) -> Metrics | None:
        """Train until the epoch budget or early stopping; returns the best validation metrics."""
        config, fine = self.config, self.config.finetuning
        best_metrics = None
        started = time.time()
        while self.epoch < fine.epochs and self.stale < fine.patience:
            loss = self._train_epoch()
            metrics = None
            if self.world.main:
                self.on_progress("validate", 0, 1)
                metrics = validate(self.model, self.val_samples, self.device, config.workers, fine.micro_batch)
            metrics = self.world.broadcast(metrics)
            improved = metrics.ap > self.best_ap
            if self.epoch >= fine.warmup_epochs:  # the schedule follows the fused model only
                self.scheduler.step(metrics.ap)
                self.stale = 0 if improved else self.stale + 1
            self.best_ap = max(self.best_ap, metrics.ap)
            self._log({"epoch": self.epoch, "train_loss": loss, "val": metrics.to_dict(),
                       "lr": self.optimizer.param_groups[0]["lr"], "improved": improved})
            if improved:
                best_metrics = metrics
                if self.world.main:
                    save_checkpoint(self.out / BEST_NAME, self.model, self._metadata(metrics, time.time() - started))
            self.epoch += 1
            if self.world.main:
                with atomic_open(self.out / STATE_NAME, "wb") as handle:
                    torch.save(self.state_dict(), handle)
        return best_metrics


@dataclass
class FrozenReport:
    """What a frozen-backbone run kept, and how it did on the held-out and validation images."""

    checkpoint: Path
    best_epoch: int
    selection: Selection
    threshold: float
    val: Metrics | None
    images: int
    errors: list[tuple[str, str]]
    seconds: float


def train_frozen(config: TrainConfig, on_progress: Callable[[str, int, int], None] | None = None) -> FrozenReport:
    """The default recipe: descriptors of `config.views` augmented views of every training image through
    the frozen backbone (cached), heads fitted on them and chosen on the held-out images (clean views,
    as `scan` sees them), the threshold set on the held-out reals; writes OUT/best.pt and OUT/log.jsonl."""
    started = time.time()
    data = gather(config)
    torch.manual_seed(config.seed)
    model = load_checkpoint(config.init)[0] if config.init else FusedDetector(config.model, config.pretrained)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    def described(samples, recipe: ViewRecipe, phase: str) -> FeatureSet:
        done = [0]

        def tick(count: int) -> None:
            done[0] += count
            if on_progress:
                on_progress(phase, done[0], len(samples) * recipe.views)

        return extract(model, samples, recipe, config.cache or DEFAULT_CACHE, config.device, config.workers, tick)

    train = described(data.samples, ViewRecipe(config.views, config.augment, config.view_seed), "describe training images")
    select = described(data.select, ViewRecipe(), "describe held-out images")
    val = described(data.val, ViewRecipe(), "describe validation images") if data.val else None
    root_of = {str(data.samples[i][0]): r for r, group in enumerate(data.groups) for i in group}
    groups = [[i for i, path in enumerate(train.paths) if root_of[path] == r] for r in range(len(data.groups))]
    uniform = len(set(data.root_weights)) <= 1

    def order(epoch: int) -> np.ndarray:
        return np.asarray(epoch_indices(groups, data.root_weights, config.seed, epoch, len(train)))

    model.cpu()  # the heads learn on the CPU: cached descriptors make them cheap
    names = [group_of(path, data.select_root) if data.select_root else "held out" for path in select.paths]
    with open(out / LOG_NAME, "w", encoding="utf-8") as log:
        def on_epoch(record: dict) -> None:
            log.write(json.dumps(record) + "\n")
            if on_progress:
                on_progress("fit heads", record["epoch"] + 1, config.heads.epochs)

        result = fit_heads(model, train, Heldout(select, names), config.heads, None if uniform else order,
                           config.seed, on_epoch)
    val_metrics = None
    if val is not None:
        scores = probabilities(model, val)
        val_metrics = set_metrics("val", val.labels.tolist(), scores.tolist(), result.threshold)
    metadata = {"name": f"aidetect-{config.model.backbone}-{config.model.patches}", "threshold": result.threshold,
                "training_data": {"roots": config.roots, "root_weights": data.root_weights, "images": len(train),
                                  "select": config.select, "val": config.val},
                "recipe": config.to_dict(), "epoch": result.best_epoch, "selection": result.selection.to_dict(),
                "val_metrics": val_metrics.to_dict() if val_metrics else None,
                "training_seconds": round(time.time() - started), "torch": str(torch.__version__)}
    checkpoint = save_checkpoint(out / BEST_NAME, model, metadata)
    errors = train.errors + select.errors + (val.errors if val else [])
    return FrozenReport(checkpoint, result.best_epoch, result.selection, result.threshold, val_metrics, len(train),
                        errors, time.time() - started)
