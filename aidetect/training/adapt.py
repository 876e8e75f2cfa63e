"""`aidetect adapt`: refit a checkpoint's heads to a user's own generator and cameras, or, from real photos
alone, its real-only branch to the user's cameras (`adapt_real_only`).

A detector meets generators it never saw. With the backbone frozen, a few dozen images of the new
generator and of the user's cameras are enough to refit the heads (projection, fusion, classifier)
in under a minute on a CPU: their descriptors are computed once, in a few augmented views, and the
heads train on them starting from the checkpoint's, everything else kept. A share of each class
is held out of the refit: the AP on it before and after says whether adapting helped, and the
threshold is set on its reals. Adapting can also fail (a trace the frozen features do not carry):
the report shows it, and the checkpoint is written either way, for the user to judge.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.metrics import average_precision_score

from ..checkpoint import file_sha256, load_checkpoint, save_checkpoint
from ..config import AdaptConfig, AugmentConfig
from ..evaluation.metrics import fpr_threshold
from ..forensic import ForensicConfig, fit_real_model
from ..forensic.model import holdout_split
from ..images import ImageError, load_image
from ..inputs import iter_inputs
from .descriptor_cache import ViewRecipe, extract
from .head_fit import fit_heads, probabilities


@dataclass
class AdaptReport:
    """What was refitted on, and the held-out AP before and after."""

    real_dir: str
    fake_dir: str
    fitted: tuple[int, int]  # reals, fakes the heads were refitted on
    held_out: tuple[int, int]  # reals, fakes kept out to measure
    ap_before: float
    ap_after: float
    threshold: float
    seconds: float
    errors: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _images(folder: str | os.PathLike, what: str) -> tuple[list[str], list[tuple[str, str]]]:
    if not Path(folder).is_dir():
        raise ValueError(f"{folder}: not a folder of {what} images")
    items = list(iter_inputs([os.fspath(folder)]))
    return [i.path for i in items if not i.error], [(i.path, i.error) for i in items if i.error]


def split(count: int, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(refit, held out) indices of `count` images: at least two of each, the held-out share rounded."""
    order = rng.permutation(count)
    cut = min(max(2, round(count * share)), count - 2)
    return np.sort(order[cut:]), np.sort(order[:cut])


def adapt(real_dir: str | os.PathLike, fake_dir: str | os.PathLike, out: str | os.PathLike,
          weights: str | os.PathLike | None = None, config: AdaptConfig = AdaptConfig(), device: str = "auto",
          workers: int | None = None, progress: Callable[[int], None] | None = None) -> AdaptReport:
    """Refit the heads of `weights` on the images of `real_dir` and `fake_dir` and write the result to `out`.
    Raises ValueError when a class has fewer than `config.min_images` readable images."""
    started = time.time()
    model, info = load_checkpoint(weights)
    reals, real_errors = _images(real_dir, "real")
    fakes, fake_errors = _images(fake_dir, "generated")
    samples = [(path, 0) for path in reals] + [(path, 1) for path in fakes]
    clean = extract(model, samples, ViewRecipe(), cache=None, device=device, workers=workers, progress=progress)
    for label, what, folder in ((0, "real", real_dir), (1, "generated", fake_dir)):
        found = int((clean.labels == label).sum())
        if found < config.min_images:
            raise ValueError(f"{folder}: {found} readable {what} images; adapting needs at least {config.min_images} "
                             f"of each class (a few dozen work better)")
    rng = np.random.default_rng([config.seed, 5])
    parts = [split(int((clean.labels == label).sum()), config.holdout, rng) for label in (0, 1)]
    where = [np.flatnonzero(clean.labels == label) for label in (0, 1)]
    refit = np.concatenate([where[label][parts[label][0]] for label in (0, 1)])
    held = np.concatenate([where[label][parts[label][1]] for label in (0, 1)])
    measured = clean.subset(held)
    before = float(average_precision_score(measured.labels, probabilities(model, measured)))
    recipe = ViewRecipe(config.views, AugmentConfig(), config.seed)
    train = extract(model, [(clean.paths[i], int(clean.labels[i])) for i in refit], recipe, cache=None,
                    device=device, workers=workers)
    model.cpu()
    fit_heads(model, train, None, config.heads, seed=config.seed, fit_scaler=False)
    scores = probabilities(model, measured)
    after = float(average_precision_score(measured.labels, scores))
    threshold = fpr_threshold(scores[measured.labels == 0], config.target_fpr)
    report = AdaptReport(str(real_dir), str(fake_dir), (len(parts[0][0]), len(parts[1][0])),
                         (len(parts[0][1]), len(parts[1][1])), before, after, threshold, time.time() - started,
                         real_errors + fake_errors + clean.errors)
    record = {**{k: v for k, v in report.to_dict().items() if k != "errors"}, "source": str(info.path),
              "source_sha256": file_sha256(info.path),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    kept = {k: v for k, v in info.metadata.items() if k != "combination"}  # fitted to the old heads' logits
    save_checkpoint(out, model, {**kept, "threshold": threshold, "logit_bias": 0.0, "adaptation": record},
                    info.real_photo)
    return report


@dataclass
class RealOnlyReport:
    """What the real-only branch was refitted on, and the share of the user's held-out photos it flags."""

    real_dir: str
    fitted: int  # photos described (with their augmented views) for the refit
    held_out: int  # photos kept out to set and check the threshold
    flagged_before: float | None  # share of the held-out photos above the old threshold (None: no branch before)
    flagged_after: float
    threshold_before: float | None
    threshold_after: float
    seconds: float
    errors: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def adapt_real_only(real_dir: str | os.PathLike, out: str | os.PathLike, weights: str | os.PathLike | None = None,
                    weight: float = 0.25, views: int = 4, progress: Callable[[str, int, int], None] | None = None,
                    config: ForensicConfig | None = None) -> RealOnlyReport:
    """Refit the real-only branch of `weights` on the real photos of `real_dir` alone (no fakes): their
    density (with `views` augmented views of each photo) is added to the branch's at `weight`
    (RealPhotoModel.refit); a checkpoint without the
    branch gets one fitted from scratch on these photos (with `config`, default ForensicConfig()). Writes the checkpoint, everything else unchanged."""
    started = time.time()
    model, info = load_checkpoint(weights)
    reals, errors = _images(real_dir, "real")
    if len(reals) < 3:
        raise ValueError(f"{real_dir}: {len(reals)} real photos; refitting the real-only branch needs a few dozen")
    old = info.real_photo
    try:
        if old is None:
            new = fit_real_model(reals, config, progress, errors=errors)
        else:
            new = old.refit(reals, weight, views, progress, errors)
    except ValueError as exc:  # too few photos could be described: say which could not, and why
        skipped = "; ".join(f"{os.path.basename(path)}: {why}" for path, why in errors[:3])
        raise ValueError(f"{real_dir}: {exc}" + (f" ({skipped}{'; ...' if len(errors) > 3 else ''})" if skipped else "")) from None
    held, _ = holdout_split(len(reals), new.config)
    before, after = [], []
    for index in held:
        try:
            description = new.describe(load_image(reals[index]))
        except (ImageError, ValueError):  # listed in errors by the refit already
            continue
        after.append(float(new.score_descriptions(description)[0]) > new.threshold)
        if old is not None:
            before.append(float(old.score_descriptions(description)[0]) > old.threshold)
    fitted = new.fitted_images - (old.fitted_images if old is not None else 0)  # photos of this refit
    report = RealOnlyReport(str(real_dir), fitted, len(after),
                            float(np.mean(before)) if before else None, float(np.mean(after)) if after else 0.0,
                            None if old is None else old.threshold, new.threshold, time.time() - started, errors)
    record = {**{k: v for k, v in report.to_dict().items() if k != "errors"}, "source": str(info.path),
              "source_sha256": file_sha256(info.path),
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    kept = {k: v for k, v in info.metadata.items() if k != "combination"}  # fitted to the old branch's scores
    save_checkpoint(out, model, {**kept, "real_only_adaptation": record}, new)
    return report
