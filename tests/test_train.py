"""Training: repeatable augmentation, weighted sampling, exact resume, and DDP with 2 CPU processes."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from aidetect.config import AugmentConfig, FinetuneConfig, ModelConfig, TrainConfig
from aidetect.datasets import epoch_indices
from aidetect.training.augment import augment
from aidetect.training.train import STATE_NAME, Trainer


def make_layout(root: Path, per_class: int = 6) -> Path:
    """A CNNDetection-layout folder: noisy 'fakes', smooth 'reals', 72-96 px, in a sub-folder."""
    rng = np.random.default_rng(1)
    for label, folder in ((0, "0_real"), (1, "1_fake")):
        target = root / folder / "set_a"
        target.mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(72, 97)), int(rng.integers(72, 97))
            base = rng.integers(0, 256, (h, w, 3)) if label else np.full((h, w, 3), rng.integers(0, 256, 3))
            Image.fromarray(base.astype(np.uint8)).save(target / f"{i}.png")
    return root


def tiny_config(root: Path, out: Path, **changes) -> TrainConfig:
    """A run of a tiny model; `changes` set fields of its TrainConfig or of its FinetuneConfig."""
    fine_fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    fine = FinetuneConfig(**{"epochs": 2, "batch_size": 8, "micro_batch": 4,
                             **{k: v for k, v in changes.items() if k in fine_fields}})
    config = TrainConfig(roots=[str(root)], out=str(out), model=ModelConfig(backbone="tiny"), pretrained=False,
                         workers=0, val_fraction=0.2, seed=3, finetuning=fine,
                         augment=AugmentConfig(blur_prob=0.5, jpeg_prob=0.5, reencode_prob=0.5, crop=(48, 64)))
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if k not in fine_fields})


def weights_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_augmentation_depends_only_on_its_seed():
    image = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    config = AugmentConfig(blur_prob=1.0, jpeg_prob=1.0, reencode_prob=1.0, crop=(50, 90))
    first = augment(image, np.random.default_rng([5, 1, 2]), config)
    again = augment(image, np.random.default_rng([5, 1, 2]), config)
    other = augment(image, np.random.default_rng([5, 1, 3]), config)
    assert np.array_equal(first, again)
    assert first.shape[0] == first.shape[1] and 50 <= first.shape[0] <= 90
    assert not np.array_equal(first, other)


def test_root_weights_set_the_mix():
    groups = [list(range(0, 10)), list(range(10, 1010))]  # a small root and a large one
    order = epoch_indices(groups, [3.0, 1.0], seed=0, epoch=0, size=4000)
    share_small = np.mean([i < 10 for i in order])
    assert 0.72 < share_small < 0.78  # 3:1 by weight, whatever the roots' sizes
    plain = epoch_indices(groups, [1.0, 1.0], seed=0, epoch=0, size=1010)
    assert sorted(plain) == list(range(1010))  # equal weights: every image once


def test_fit_writes_best_checkpoint_and_log(tmp_path):
    root = make_layout(tmp_path / "data")
    trainer = Trainer(tiny_config(root, tmp_path / "run", warmup_epochs=1))
    metrics = trainer.fit()
    assert 0 <= metrics.ap <= 1 and metrics.n_real + metrics.n_fake == len(trainer.val_samples)
    assert metrics.real_accuracy is not None and metrics.fake_accuracy is not None
    from aidetect.checkpoint import load_checkpoint

    model, info = load_checkpoint(tmp_path / "run" / "best.pt")
    assert info.config.backbone == "tiny" and info.metadata["training_data"]["images"] == len(trainer.samples)
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert sum('"train_loss"' in line for line in lines) == 2


def test_validation_without_both_classes_is_refused(tmp_path):
    root = make_layout(tmp_path / "data")
    (tmp_path / "val" / "0_real").mkdir(parents=True)
    Image.new("RGB", (80, 80)).save(tmp_path / "val" / "0_real" / "only.png")
    with pytest.raises(ValueError, match="validation needs real and generated images"):
        Trainer(tiny_config(root, tmp_path / "run", val=str(tmp_path / "val")))


def test_training_batches_and_the_engine_give_the_same_output(tmp_path):
    """One forward pass: a training batch (with the backbone frozen, as in fused epochs) and `Detector.predict`
    on the same images and weights give the same probabilities and boxes."""
    from aidetect.checkpoint import CheckpointInfo
    from aidetect.engine import Detector
    from aidetect.training.train import TrainImages, collate

    rng = np.random.default_rng(0)
    for label in ("0_real", "1_fake"):  # square: the training crop is then the whole image
        (tmp_path / "data" / label).mkdir(parents=True)
        for i, side in enumerate((90, 250, 300)):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(tmp_path / "data" / label / f"{i}.png")
    trainer = Trainer(tiny_config(tmp_path / "data", tmp_path / "run", val_fraction=0.34, augment=AugmentConfig(
        blur_prob=0, jpeg_prob=0, reencode_prob=0, rescale_prob=0, flip=False, crop=None)))  # the images as they are
    samples = trainer.samples
    batch = collate([TrainImages(samples, trainer.config.augment, 0)[i] for i in range(len(samples))])
    model = trainer.model
    model.train()
    model.backbone.eval()  # frozen: BatchNorm uses its running statistics, as at inference
    with torch.no_grad():
        logits = model(batch["views"].float() / 255, batch["pixels"]).logits
        model.classifier.weight.div_(logits.std())  # standardise the logits, so that agreement means something
        model.classifier.bias.sub_(logits.mean()).div_(logits.std())
        out = model(batch["views"].float() / 255, batch["pixels"])
    info = CheckpointInfo(tmp_path / "x.pt", model.config, {"threshold": 0.5})
    predictions = Detector(model, info, device="cpu", batch_size=len(samples), channels_last=False).predict(
        [p for p, _ in samples])
    probabilities = torch.tensor([p.probability for p in predictions])
    assert probabilities.max() - probabilities.min() > 0.01
    assert torch.allclose(torch.sigmoid(out.logits), probabilities, atol=1e-4)  # eval-mode attention kernels differ in the last bits
    assert [[[b.y0, b.x0, b.y1, b.x1] for b in p.boxes] for p in predictions] == out.seen.boxes.tolist()


def test_resume_continues_exactly(tmp_path):
    root = make_layout(tmp_path / "data")
    straight = Trainer(tiny_config(root, tmp_path / "straight"))
    straight.fit()

    first = Trainer(tiny_config(root, tmp_path / "split", epochs=1))
    first.fit()
    resumed = Trainer.resume(tmp_path / "split" / STATE_NAME)
    resumed.config.finetuning = dataclasses.replace(resumed.config.finetuning, epochs=2)
    resumed.fit()
    assert resumed.epoch == straight.epoch == 2
    a, b = weights_of(straight), weights_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(tiny_config(Path(root), Path(out), epochs=1, device="cpu"))
    trainer.fit()
    torch.save(trainer.model.state_dict(), Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    root = make_layout(tmp_path / "data", per_class=8)
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(root), str(out)), nprocs=2, join=True)
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    initial = Trainer(tiny_config(root, tmp_path / "init", epochs=1)).model.state_dict()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert any(not torch.equal(rank0[k], initial[k]) for k in rank0), "no training step happened"
    assert (out / "best.pt").exists() and not (out / "rank1").exists()


def make_heldout(root: Path) -> Path:
    """Held-out generators and a held-out real source: root/cams/0_real, root/<gen>/1_fake/<gen>."""
    rng = np.random.default_rng(7)
    for rel, noisy in (("cams/0_real", False), ("mj/1_fake/mj-v4", True), ("sg/1_fake/ffhq", True)):
        (root / rel).mkdir(parents=True)
        for i in range(4):
            base = rng.integers(0, 256, (80, 90, 3)) if noisy else np.full((80, 90, 3), rng.integers(0, 256, 3))
            Image.fromarray(base.astype(np.uint8)).save(root / rel / f"{i}.png")
    return root


def test_frozen_training_chooses_on_held_out_generators(tmp_path):
    from aidetect.checkpoint import load_checkpoint
    from aidetect.config import HeadConfig
    from aidetect.training.train import train_frozen

    config = tiny_config(make_layout(tmp_path / "data"), tmp_path / "run", select=str(make_heldout(tmp_path / "held")),
                         views=2, cache=str(tmp_path / "cache"), heads=HeadConfig(epochs=4, batch_size=4, patience=2))
    report = train_frozen(config)
    assert set(report.selection.per_generator) == {"mj-v4", "ffhq"} and report.images == 12
    model, info = load_checkpoint(report.checkpoint)
    assert info.threshold == report.threshold and info.metadata["selection"]["mean_ap"] == report.selection.mean_ap
    assert model.descriptor_std.min() > 0 and not torch.equal(model.descriptor_std, torch.ones_like(model.descriptor_std))
    epochs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(len(epochs))) and 3 <= len(epochs) <= 4
    assert report.best_epoch == max(range(len(epochs)), key=lambda e: (epochs[e]["heldout"]["mean_ap"], -e))


def test_cli_trains_the_frozen_recipe(tmp_path):
    from helpers import run_cli

    result = run_cli("train", make_layout(tmp_path / "data"), "--select", make_heldout(tmp_path / "held"),
                     "--backbone", "tiny", "--scratch", "--views", "1", "--epochs", "2", "--batch-size", "4",
                     "--cache", tmp_path / "cache", "--out", tmp_path / "run", "--device", "cpu", "--workers", "0",
                     "--no-progress")
    assert result.exit_code == 0, result.output
    assert "mj-v4" in result.stdout and "ffhq" in result.stdout and (tmp_path / "run" / "best.pt").exists()
    assert "threshold" in result.stderr
