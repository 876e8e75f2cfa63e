"""The real-photo model: filters, self-description, mixture and threshold in one object, and its fitting.

    model = fit_real_model(paths_of_real_photos, ForensicConfig())
    model.score(pixels)       # negative log-likelihood under real photos; above model.threshold: unlike them
    state = model.to_state()  # plain tensors and numbers: fits in a checkpoint loaded with weights_only=True
    RealPhotoModel.from_state(state).score(pixels)  # the same number
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Union

import numpy as np
import torch

from ..images import ImageError, load_image
from .augment import augmented_view
from .config import ForensicConfig
from .describe import describe_plane
from .filter_fit import learn_filters, least_squares_bank, sample_crops
from .filters import check_bank
from .grey import centre_crop, to_grey
from .localmap import describe_tile, describe_tiles, random_tiles
from .mixture import Density, PooledDensity, density_from_arrays, fit_mixture

STATE_FORMAT = "aidetect.forensic.real-photo-model/1"
ImageInput = Union[np.ndarray, str, os.PathLike]
Progress = Callable[[str, int, int], None]  # (stage, done, total)
Errors = list[tuple[str, str]]  # (path, why) of the photos skipped


@dataclass
class RealPhotoModel:
    """Everything needed to score an image against real photos (see the module's docstring)."""

    config: ForensicConfig
    bank: np.ndarray  # K x F x F prediction-error filters
    mixture: Density  # over whole-image (centre-crop) descriptions (pooled with a user's photos after refit)
    threshold: float  # score above which an image is flagged: config.target_fpr of held-out real photos
    tile_mixture: Density | None = None  # over tile descriptions, for score_map
    tile_threshold: float = math.inf
    fitted_images: int = 0  # real photos whose views the mixture was fitted on
    held_out_images: int = 0  # real photos the threshold was set on (0: set on the fitting photos)

    def describe(self, pixels: np.ndarray) -> np.ndarray:
        """The self-description (float32 vector of config.descriptor_size) of H x W x 3 uint8 pixels."""
        return describe_crop(to_grey(pixels, self.config.min_side, self.config.crop), self.bank, self.config)

    def score(self, pixels: np.ndarray) -> float:
        """Negative log-likelihood of the image's description under real photos (higher = less like them)."""
        return float(self.mixture.score(self.describe(pixels)[None])[0])

    def score_descriptions(self, descriptions: np.ndarray) -> np.ndarray:
        return self.mixture.score(np.atleast_2d(descriptions))

    def score_map(self, pixels: np.ndarray) -> np.ndarray:
        """rows x cols scores of tiles (localmap.tile_boxes says where), under the tile model: compare
        with `tile_threshold`. Tiles see less than the whole image, so their scores are noisier."""
        if self.tile_mixture is None:
            raise ValueError("this model was fitted without a tile model: no score map")
        grey = to_grey(pixels, self.config.min_side)
        described = describe_tiles(grey, self.bank, self.config)
        rows, cols, size = described.shape
        return self.tile_mixture.score(described.reshape(-1, size)).reshape(rows, cols)

    def refit(self, images: Iterable[ImageInput], weight: float = 0.25, views: int = 4,
              progress: Progress | None = None, errors: Errors | None = None) -> "RealPhotoModel":
        """A copy refitted to a user's own real photos (no fakes needed): same filters; the photos'
        descriptions (each photo with `views` augmented views: JPEG, downscaling) get a density of their
        own, added to this model's with weight `weight` (PooledDensity), so that what it knew is kept
        whole: another photo's score rises by at most -log(1 - weight) nats. A seeded share of the photos
        (config.holdout) checks the threshold: it rises, if need be, until at most config.target_fpr of
        them are flagged; it never falls, so no other photo is flagged more than before. Photos that
        cannot be read or are too small are skipped, and listed in `errors` when given."""
        if not 0 < weight < 1:
            raise ValueError(f"the weight of your photos' density must lie strictly between 0 and 1, not {weight}")
        config, progress = self.config, progress or _quiet
        items = list(images)
        held_index, fit_index = holdout_split(len(items), config)
        whole, tiles, fitted = _describe_fitting(items, fit_index, self.bank, config, progress, views, (3,), errors)
        if fitted < 2:
            raise ValueError(f"fewer than 2 of the {len(fit_index)} real photos to fit on could be read and described")
        held = _describe_held_out(items, held_index, self.bank, config, progress, errors)
        mixture, threshold = _add_density(self.mixture, self.threshold, whole, held[0], weight, config)
        tile_mixture, tile_threshold = None, math.inf
        if self.tile_mixture is not None:
            tile_mixture, tile_threshold = _add_density(self.tile_mixture, self.tile_threshold, tiles, held[1],
                                                        weight, config)
        return RealPhotoModel(config, self.bank, mixture, threshold, tile_mixture, tile_threshold,
                              fitted_images=self.fitted_images + fitted,
                              held_out_images=self.held_out_images + len(held[0]))

    def to_state(self) -> dict[str, torch.Tensor | int | float | str]:
        """Plain tensors, ints, floats and strings only (torch.load(..., weights_only=True) reads them)."""
        state: dict[str, torch.Tensor | int | float | str] = {"format": STATE_FORMAT}
        for f in fields(ForensicConfig):
            value = getattr(self.config, f.name)
            if isinstance(value, tuple):  # float64 keeps a float exactly as the config holds it
                value = torch.tensor(value, dtype=torch.float64 if isinstance(value[0], float) else torch.int64)
            elif isinstance(value, bool):
                value = int(value)
            state[f"config.{f.name}"] = value
        state["bank"] = torch.from_numpy(self.bank.copy())
        for prefix, mixture in (("mixture", self.mixture), ("tiles", self.tile_mixture)):
            if mixture is not None:
                for key, value in mixture.to_arrays().items():
                    state[f"{prefix}.{key}"] = value if isinstance(value, float) else torch.from_numpy(value.copy())
        state.update(threshold=float(self.threshold), tile_threshold=float(self.tile_threshold),
                     fitted_images=int(self.fitted_images), held_out_images=int(self.held_out_images))
        return state

    @classmethod
    def from_state(cls, state: dict) -> "RealPhotoModel":
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a real-photo model state (format {state.get('format')!r}, expected {STATE_FORMAT})")
        config_values = {}
        for f in fields(ForensicConfig):
            key = f"config.{f.name}"
            if key in state:
                value = state[key]
                if isinstance(value, torch.Tensor):
                    value = tuple(value.tolist())
                config_values[f.name] = bool(value) if isinstance(f.default, bool) else value
        config = ForensicConfig(**config_values)

        def mixture(prefix: str) -> Density | None:
            arrays = {k[len(prefix) + 1:]: (v.numpy() if isinstance(v, torch.Tensor) else v)
                      for k, v in state.items() if k.startswith(prefix + ".")}
            return density_from_arrays(arrays) if arrays else None

        return cls(config=config, bank=check_bank(state["bank"].numpy()), mixture=mixture("mixture"),
                   threshold=float(state["threshold"]), tile_mixture=mixture("tiles"),
                   tile_threshold=float(state["tile_threshold"]), fitted_images=int(state["fitted_images"]),
                   held_out_images=int(state["held_out_images"]))


def describe_crop(grey: np.ndarray, bank: np.ndarray, config: ForensicConfig) -> np.ndarray:
    """The self-description of a grey plane's centre crop (config.crop) under a bank."""
    c = config
    return describe_plane(centre_crop(grey, c.crop), bank, c.neighbourhood, c.scales, c.samples, c.ridge, c.seed)


def _pixels(item: ImageInput) -> np.ndarray:
    return item if isinstance(item, np.ndarray) else load_image(item)


def _quiet(stage: str, done: int, total: int) -> None:
    pass


def holdout_split(count: int, config: ForensicConfig) -> tuple[list[int], list[int]]:
    """Indices of the photos kept out to set the threshold, and of those fitted on (seeded, sorted)."""
    order = np.random.default_rng(config.seed).permutation(count)
    held = int(count * config.holdout) if count * config.holdout >= 2 else 0
    return sorted(int(i) for i in order[:held]), sorted(int(i) for i in order[held:])


def fit_filters(items: list[ImageInput], config: ForensicConfig, progress: Progress = _quiet) -> np.ndarray:
    """The filter bank, learnt (or least-squares fitted) on grey crops of these photos and of one
    augmented view of each. Reads at most config.filter_crops / 4 photos, spread over the list."""
    count = min(len(items), max(1, config.filter_crops // 4))
    chosen = np.linspace(0, len(items) - 1, count).round().astype(int)
    greys = []
    for done, index in enumerate(chosen):
        rng = np.random.default_rng([config.seed, int(index), 1])
        try:
            pixels = _pixels(items[index])
            view = augmented_view(pixels, rng, config.jpeg_quality, config.downscale, config.min_side)
            greys += [to_grey(pixels, config.min_side), to_grey(view, config.min_side)]
        except (ImageError, ValueError):  # an unreadable or too small photo only loses its crops
            pass
        progress("reading crops", done + 1, len(chosen))
    crops = sample_crops(greys, config.filter_crops, config.seed)
    if config.filter_kind == "least_squares":
        return least_squares_bank(crops, config.filters, config.filter_size)
    return learn_filters(crops, config.filters, config.filter_size, config.diversity, config.filter_steps,
                         config.seed, progress=lambda step, loss: progress("learning filters", step + 1,
                                                                           config.filter_steps))


def describe_views(pixels: np.ndarray, bank: np.ndarray, config: ForensicConfig, rng: np.random.Generator,
                   views: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Descriptions of the photo and of `views` augmented views of it, and of one random tile of each."""
    whole, tiles = [], []
    for v in range(views + 1):
        view = pixels if v == 0 else augmented_view(pixels, rng, config.jpeg_quality, config.downscale,
                                                    config.min_side)
        grey = to_grey(view, config.min_side)
        whole.append(describe_crop(grey, bank, config))
        tiles += [describe_tile(t, bank, config) for t in random_tiles(grey, 1, config, rng)]
    return whole, tiles


def _add_density(density: Density, threshold: float, own: list[np.ndarray], held: list[np.ndarray], weight: float,
                 config: ForensicConfig) -> tuple[PooledDensity, float]:
    """`density` with a part fitted on a user's descriptions `own` added at `weight`, and the threshold:
    the old one, raised if need be until at most config.target_fpr of the `held` descriptions exceed it."""
    part = fit_mixture(np.stack(own), config.components, config.pca_dims, config.covariance, config.seed,
                       config.pca_residual)
    pooled = PooledDensity.adding(density, part, weight)
    if held:
        threshold = max(threshold, float(np.quantile(pooled.score(np.stack(held)), 1 - config.target_fpr)))
    return pooled, threshold


def _describe_fitting(items: list[ImageInput], fit_index: list[int], bank: np.ndarray, config: ForensicConfig,
                      progress: Progress, views: int | None = None, salt: tuple[int, ...] = (),
                      errors: Errors | None = None) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Descriptions of the fitting photos and their augmented views (config.augment_views unless `views`), one
    random tile of each, and how many photos were described (unreadable or too small ones are skipped).
    `salt` changes the views' seeds; `errors` collects what was skipped and why."""
    whole, tiles, fitted = [], [], 0
    for done, index in enumerate(fit_index):
        try:
            described = describe_views(_pixels(items[index]), bank, config,
                                       np.random.default_rng([config.seed, int(index), *salt]),
                                       config.augment_views if views is None else views)
        except (ImageError, ValueError) as exc:
            _skipped(errors, items[index], exc)
        else:
            whole += described[0]
            tiles += described[1]
            fitted += 1
        progress("describing", done + 1, len(fit_index))
    return whole, tiles, fitted


def _skipped(errors: Errors | None, item: ImageInput, exc: Exception) -> None:
    if errors is not None:
        errors.append(("<pixels>" if isinstance(item, np.ndarray) else os.fspath(item), str(exc)))


def _describe_held_out(items: list[ImageInput], held_index: list[int], bank: np.ndarray, config: ForensicConfig,
                       progress: Progress, errors: Errors | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Descriptions of the held-out photos (whole crop, one random tile each) that set the thresholds."""
    whole, tiles = [], []
    for done, index in enumerate(held_index):
        try:
            grey = to_grey(_pixels(items[index]), config.min_side)
        except (ImageError, ValueError) as exc:
            _skipped(errors, items[index], exc)
            continue
        whole.append(describe_crop(grey, bank, config))
        tiles += [describe_tile(t, bank, config) for t in
                  random_tiles(grey, 1, config, np.random.default_rng([config.seed, index, 2]))]
        progress("threshold", done + 1, len(held_index))
    return whole, tiles


def fit_real_model(images: Iterable[ImageInput], config: ForensicConfig | None = None,
                   progress: Progress | None = None, bank: np.ndarray | None = None,
                   errors: Errors | None = None) -> RealPhotoModel:
    """Fit the real-photo model on real photos only (arrays H x W x 3 uint8, or paths decoded with
    aidetect.images.load_image; unreadable or too small ones are skipped). A seeded share
    (config.holdout) is kept out to set the threshold; the rest, each with config.augment_views
    augmented views (JPEG, downscaling), fits the filters (unless `bank` is given) and the mixtures.
    `errors` (a list), when given, collects the photos skipped and why."""
    config = config or ForensicConfig()
    progress = progress or _quiet
    items = list(images)
    held_index, fit_index = holdout_split(len(items), config)
    fit_items = [items[i] for i in fit_index]
    if len(fit_items) < 2:
        raise ValueError(f"need at least 2 real photos to fit on, got {len(fit_items)}")
    bank = check_bank(bank) if bank is not None else fit_filters(fit_items, config, progress)

    whole, tiles, fitted = _describe_fitting(items, fit_index, bank, config, progress, errors=errors)
    if fitted < 2:
        raise ValueError("fewer than 2 of the real photos could be read and described")
    mixture = fit_mixture(np.stack(whole), config.components, config.pca_dims, config.covariance, config.seed,
                          config.pca_residual)
    tile_mixture = fit_mixture(np.stack(tiles), config.components, config.pca_dims, config.covariance, config.seed,
                               config.pca_residual)
    model = RealPhotoModel(config, bank, mixture, threshold=math.inf, tile_mixture=tile_mixture,
                           fitted_images=fitted)

    held_whole, held_tiles = _describe_held_out(items, held_index, bank, config, progress, errors)
    quantile = 1 - config.target_fpr
    if held_whole:
        model.threshold = float(np.quantile(mixture.score(np.stack(held_whole)), quantile))
        model.tile_threshold = float(np.quantile(tile_mixture.score(np.stack(held_tiles)), quantile))
        model.held_out_images = len(held_whole)
    else:  # no photo to spare: the fitting photos' own scores (optimistic: fewer real photos flagged here)
        model.threshold = float(np.quantile(mixture.score(np.stack(whole[:: config.augment_views + 1])), quantile))
        model.tile_threshold = float(np.quantile(tile_mixture.score(np.stack(tiles)), quantile))
    return model
