"""The settings of the real-only forensic branch, in one frozen dataclass (one place for every default)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

FILTER_KINDS = ("learnt", "least_squares")


@dataclass(frozen=True)
class ForensicConfig:
    """How residuals are extracted, how an image describes itself, and how the real-photo model is fitted.

    Residuals: `filters` prediction-error filters of `filter_size` x `filter_size` (centre fixed at 0, the
    other weights summing to one), either learnt jointly on real photos (`filter_kind="learnt"`: residual
    energy plus `diversity` x the residuals' mutual correlation) or least-squares predictors on fixed
    supports (`"least_squares"`, the baseline). Self-description: per residual and per scale, the
    sum-to-one linear predictor of a residual from its `neighbourhood` x `neighbourhood` neighbours
    (point-symmetric weights), solved by ridge least squares over `samples` positions of the centre crop
    of at most `crop` pixels. Real-photo model: standardise, PCA to `pca_dims`, a `components`-Gaussian
    mixture; score = negative log-likelihood."""

    filters: int = 8
    filter_size: int = 7
    filter_kind: str = "learnt"
    diversity: float = 1.0  # weight of the residual-correlation term when the filters are learnt
    filter_steps: int = 300  # Adam steps of the filter learning
    filter_crops: int = 2048  # grey crops of 64 px drawn from the fitting photos to learn the filters
    neighbourhood: int = 11
    scales: tuple[int, ...] = (1, 2, 4)  # residual maps pooled by these factors
    crop: int = 512  # centre crop side, in pixels of the image
    samples: int = 2048  # positions per scale in the least-squares solve
    ridge: float = 1e-3  # relative to the mean diagonal of the normal equations
    components: int = 5
    covariance: str = "full"  # of the mixture: full, diag or tied
    pca_dims: int = 64
    pca_residual: bool = True  # score what PCA discards too (an isotropic Gaussian over it)
    augment_views: int = 2  # augmented copies (JPEG 60-100, downscaling 0.5-1) per fitting photo, beside it
    jpeg_quality: tuple[int, int] = (60, 100)
    downscale: tuple[float, float] = (0.5, 1.0)
    holdout: float = 0.15  # share of the fitting photos kept out to set the threshold
    target_fpr: float = 0.05  # share of held-out real photos flagged at the threshold
    tile: int = 128  # side of the tiles of the local score map
    tile_samples: int = 1024
    max_tiles: int = 12  # per side of the score map's grid
    min_side: int = 16  # smaller images are refused with a ValueError
    seed: int = 0

    def __post_init__(self) -> None:
        if self.filter_kind not in FILTER_KINDS:
            raise ValueError(f"unknown filter kind {self.filter_kind!r}; choose one of {', '.join(FILTER_KINDS)}")
        for name in ("filter_size", "neighbourhood"):
            value = getattr(self, name)
            if value < 3 or value % 2 == 0:
                raise ValueError(f"{name} must be odd and at least 3, not {value}")
        if self.filters < 1 or not self.scales or any(s < 1 for s in self.scales):
            raise ValueError("need at least one filter and one scale (scales are pooling factors >= 1)")
        if self.min_side < max(self.scales) or self.crop < self.min_side or self.tile < self.min_side:
            raise ValueError("min_side must be at least the largest scale, and crop and tile at least min_side")
        if self.covariance not in ("full", "diag", "tied"):
            raise ValueError(f"unknown covariance {self.covariance!r}; choose full, diag or tied")
        if not 0 <= self.holdout < 1 or not 0 < self.target_fpr < 1:
            raise ValueError("holdout must lie in [0, 1) and target_fpr in (0, 1)")
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        object.__setattr__(self, "jpeg_quality", tuple(int(q) for q in self.jpeg_quality))
        object.__setattr__(self, "downscale", tuple(float(s) for s in self.downscale))

    @property
    def descriptor_size(self) -> int:
        return self.filters * len(self.scales) * (self.neighbourhood ** 2 - 1) // 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ForensicConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
