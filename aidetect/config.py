"""The configurations of the model and of the runs that train and measure it, as plain dataclasses.

They live apart from the code that uses them, and import nothing heavy, so that the CLI takes its
option defaults from them (one place for every default) without loading torch to print `--help`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from enum import Enum

DEFAULT_MAX_PIXELS = 100_000_000  # images above are refused (10000 x 10000; a 24-megapixel photo is far below)


class FeatureLevels(str, Enum):
    """What each token (the global view's and every patch's) is made of."""

    levels = "levels"  # every feature level of the backbone, averaged over space and concatenated
    last = "last"  # the last feature map only, averaged over space (the paper's model)


class PatchStrategy(str, Enum):
    """Where the local branch looks: the paper's PSM, or its ablations."""

    psm = "psm"  # Patch Selection Module: the most activated windows of the global feature map
    random = "random"  # "RdmCrop": uniformly placed 224 crops
    rsz448 = "rsz448"  # the image resized to 448, its four corner and centre 224 crops


class Branch(str, Enum):
    """Which score an evaluation ranks images by (evaluation/evaluate.py)."""

    final = "final"  # the probability scan reports (the branches' combination)
    fused = "fused"  # the global + local model alone
    real_only = "real-only"  # the real-only branch's score, at its own threshold


class OutputFormat(str, Enum):
    """How predictions are written (render/predictions.py)."""

    table = "table"  # for people
    json = "json"  # one document
    jsonl = "jsonl"  # one line per image, streamed
    csv = "csv"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    backbone: str = "efficientnet_lite0"
    embed_dim: int = 128
    heads: int = 4
    layers: int = 3
    patches: str = PatchStrategy.psm.value
    features: str = FeatureLevels.levels.value

    def __post_init__(self) -> None:
        from .backbones import get_backbone_spec  # the registry imports torch: only when a config is made

        get_backbone_spec(self.backbone)  # fail early on unknown names
        for value, choices, what in ((self.patches, PatchStrategy, "patch strategy"),
                                     (self.features, FeatureLevels, "feature levels")):
            if value not in {c.value for c in choices}:
                raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(c.value for c in choices)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time perturbations: the paper's blur/JPEG/flip recipe plus alignment against data biases
    (the formats and sizes of the two classes differ by source; both classes are re-encoded and rescaled
    alike, so that neither tells them apart)."""

    blur_prob: float = 0.1  # paper: p = 0.1, sigma ~ U[0, 3]
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.1  # paper: p = 0.1, quality ~ U{30..100}, OpenCV or Pillow at random
    jpeg_quality: tuple[int, int] = (30, 100)
    flip: bool = True
    # Format alignment (not in the paper): re-encode every image of both classes as JPEG with this
    # probability, so that "has a JPEG history of kind X" cannot separate the classes.
    reencode_prob: float = 1.0
    reencode_quality: tuple[int, int] = (70, 100)
    # Side range of a random native-resolution square crop; None: the whole shorter side, at a random
    # place, which is the square the global view of `scan` shows. Small crops hide the image's size
    # (the corpus's generated images are 256-1024 px squares, its photos every size): `aidetect corpus
    # bias --aligned` measures how much (README, "Training corpus").
    crop: tuple[int, int] | None = (224, 256)
    # Resampling alignment (not in the paper): downscale both classes alike with this probability,
    # by a factor in `rescale`, so that "was resized" (common for real photos online) is no class cue.
    rescale_prob: float = 0.5
    rescale: tuple[float, float] = (0.5, 1.0)


@dataclass(frozen=True)
class HeadConfig:
    """Training the heads (projection, fusion, classifier) on cached descriptors of a frozen backbone."""

    epochs: int = 30  # passes over the training images, each image in one of its views
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW
    patience: int = 6  # stop after this many epochs without a better selection score
    target_fpr: float = 0.05  # the threshold flags at most this share of the held-out reals


@dataclass(frozen=True)
class AdaptConfig:
    """`aidetect adapt`: refitting a checkpoint's heads on a few dozen images of a new generator and cameras."""

    holdout: float = 0.3  # share of each class kept out of the refit, to measure it on
    min_images: int = 8  # per class; fewer readable images are refused
    views: int = 4  # augmented views of each refit image (few images: several views each)
    heads: HeadConfig = HeadConfig(epochs=25, batch_size=16, lr=1e-4, weight_decay=1e-2)
    target_fpr: float = 0.05  # the new threshold flags at most this share of the held-out reals
    # Fewer held-out reals than this make the threshold a rough guess (README, "Training and adapting"):
    # the user is told to calibrate on more.
    steady_threshold_reals: int = 20
    seed: int = 0


@dataclass(frozen=True)
class FinetuneConfig:
    """Training the network end to end, backbone included (the paper's recipe: BCE, Adam, batch 64)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-4
    patience: int = 5  # stop after this many epochs without a better validation AP
    plateau_patience: int = 2  # halve the learning rate after this many epochs without improvement
    warmup_epochs: int = 0  # single-branch epochs on native 224 crops before the fused ones
    freeze_backbone: bool = False  # in fused epochs: train only projection, fusion and classifier
    micro_batch: int = 16  # gradient accumulation: batch_size / micro_batch steps per update
    epoch_size: int | None = None  # samples per epoch (default: every training image once)
    log_every: int = 10


@dataclass
class TrainConfig:
    """A training run. By default the ImageNet backbone stays frozen: descriptors of augmented views of
    every training image are cached, the heads learn on them (`heads`), and the epoch kept, the threshold
    too, are chosen on held-out generators and real sources (`select`). With `finetune` the network trains
    end to end instead (`finetuning`)."""

    roots: list[str]
    out: str = "runs/train"
    root_weights: list[float] = field(default_factory=list)  # sampling weight per root (default: 1 each)
    select: str | None = None  # held-out generators and real sources: what the model is chosen on
    val: str | None = None  # in-distribution validation, reported apart (fine-tuning selects on it without `select`)
    val_fraction: float = 0.1  # used when neither `select` nor `val` is given
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrained: bool = True
    init: str | None = None  # start from an aidetect checkpoint instead
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0  # initial weights, sample order (and fine-tuning's augmentation)
    device: str = "auto"
    workers: int = 2
    # frozen backbone (the default)
    views: int = 2  # augmented views cached per training image
    view_seed: int = 0  # the views' draws: part of the cached data, so `seed` alone varies the heads
    cache: str | None = None  # descriptor cache folder (default: training.descriptor_cache.DEFAULT_CACHE)
    heads: HeadConfig = field(default_factory=HeadConfig)
    # end to end
    finetune: bool = False
    finetuning: FinetuneConfig = field(default_factory=FinetuneConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["model"] = ModelConfig.from_dict(data["model"])
        augment_fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data["augment"].items()}
        data["augment"] = AugmentConfig(**augment_fields)
        data["heads"] = HeadConfig(**data.get("heads", {}))
        data["finetuning"] = FinetuneConfig(**data.get("finetuning", {}))
        return cls(**data)


@dataclass
class BenchConfig:
    """What `aidetect bench` measures. The defaults are the quick run: the backbone floor, the fused
    rate, their ratio and one end-to-end scan at the engine's own defaults (batch size and device
    chosen by the engine); `full()` adds today's matrix of sizes, batch sizes and whole-image decoding."""

    backbone: str = "efficientnet_lite0"
    weights: str | None = None  # a checkpoint instead of random weights (its backbone wins)
    device: str = "auto"
    batch_size: int | None = None  # None: the engine's default for the device
    repeats: int = 3
    batches: tuple[int, ...] = ()  # batch sizes to compare (the full run: 1, 4, 16, 64)
    sizes: tuple[int, ...] = (1024,)  # square JPEGs for the end-to-end scans
    images: int = 16  # JPEGs per size
    workers: int | None = None  # decoding workers, as `aidetect scan` (None: the engine's default)
    ready_size: int = 1024  # full-resolution side of the in-memory images
    threads: int | None = None
    channels_last: bool = False  # also measure the layout against NCHW
    bf16: bool = False  # also measure bf16 autocast
    whole_images: bool = False  # also scan the largest size with whole images sent from the workers
    check_dir: str | None = None

    def full(self) -> "BenchConfig":
        """The long matrix: three image sizes, four batch sizes, whole-image decoding, 32 images, 5 repeats."""
        return dataclasses.replace(self, repeats=5, batches=(1, 4, 16, 64), sizes=(256, 1024, 4000), images=32,
                                   whole_images=True)
