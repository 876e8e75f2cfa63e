"""Detection metrics of the field (CNNDetection convention), pure functions on labels and scores.

Per set: average precision, ROC AUC, accuracy at the decision threshold, real and fake accuracy,
and the best accuracy any threshold reaches on that set (an oracle, to separate "ranks well" from
"threshold is off"). Summaries: the mean over sets (mAP), the mean per family of sets, and every
metric over all images pooled. Label 1 = fake; an image is flagged fake when score >= threshold.
Metrics that a set cannot define (AP or AUC without both classes) are None, never a crash.

AP depends on the share of fakes in a set. Leave-generator-out sets (one generator's fakes against
every held-out real: 3 fakes against 399 reals, say) use the class-balanced AP instead: each class
weighted to half the total, the AP that a balanced set like the test sets' would give, so that its
chance level is 0.5 for every generator and a mean over generators means something.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

# Engine probabilities are rounded to 6 decimals: 0 and 1 stand for anything within half a unit.
PROBABILITY_UNIT = 5e-7

POOLED, MEAN, OTHER_FAMILY = "all images", "mean", "other"
_AVERAGED = ("ap", "auc", "accuracy", "real_accuracy", "fake_accuracy", "best_accuracy")


@dataclass(frozen=True)
class Metrics:
    """One row of a report: a set, a mean over sets, or all images pooled."""

    name: str
    n_real: int
    n_fake: int
    ap: float | None
    auc: float | None
    accuracy: float | None
    real_accuracy: float | None
    fake_accuracy: float | None
    best_accuracy: float | None
    best_threshold: float | None = None
    n_sets: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """Per-set rows, their mean (mAP), the mean per family, and the pooled row (global AP)."""

    threshold: float
    sets: list[Metrics]
    mean: Metrics
    families: list[Metrics]
    pooled: Metrics

    def rows(self) -> list[tuple[str, Metrics]]:
        """Every row in display order with its kind: set, mean, family or pooled."""
        return ([("set", m) for m in self.sets] + [("mean", self.mean)] + [("family", m) for m in self.families]
                + [("pooled", self.pooled)])

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "sets": [m.to_dict() for m in self.sets], "mean": self.mean.to_dict(),
                "families": [m.to_dict() for m in self.families], "pooled": self.pooled.to_dict()}


def _fraction(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(accuracy, threshold) of the threshold with the highest accuracy on these images; among ties
    the lowest. Candidates are every score and one just above the highest (everything real)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Flagging the top i images: correct = fakes among them + reals among the rest.
    fakes_flagged = np.concatenate(([0], np.cumsum(sorted_labels)))
    reals_flagged = np.arange(len(scores) + 1) - fakes_flagged
    correct = fakes_flagged + (len(scores) - sorted_labels.sum() - reals_flagged)
    # Only cuts between different scores are reachable by a threshold.
    valid = np.concatenate(([True], sorted_scores[:-1] != sorted_scores[1:], [True]))
    correct = np.where(valid, correct, -1)
    best = max(np.flatnonzero(correct == correct.max()))  # most flagged = lowest threshold
    threshold = float(sorted_scores[best - 1]) if best else float(np.nextafter(sorted_scores[0], np.inf))
    return float(correct[best] / len(scores)), threshold


def class_balanced(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`weights` rescaled so that each class weighs half the total (see the module's docstring)."""
    fakes, reals = float((weights * labels).sum()), float((weights * (1 - labels)).sum())
    return weights * np.where(labels == 1, 0.5 / max(fakes, 1.0), 0.5 / max(reals, 1.0))


def balanced_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision with each class weighted to half the total."""
    labels = np.asarray(labels)
    return float(average_precision_score(labels, scores, sample_weight=class_balanced(labels, np.ones(len(labels)))))


def set_metrics(name: str, labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5,
                balanced: bool = False) -> Metrics:
    """Every metric for one set of images (labels 0 = real, 1 = fake; scores = P(fake)); `balanced`:
    the class-balanced AP."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D and of equal length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    if not y.size:
        return Metrics(name, 0, 0, None, None, None, None, None, None)
    both = n_real > 0 and n_fake > 0
    flagged = s >= threshold
    best_acc, best_t = best_threshold(y, s)
    return Metrics(
        name, n_real, n_fake,
        ap=(balanced_ap(y, s) if balanced else float(average_precision_score(y, s))) if both else None,
        auc=float(roc_auc_score(y, s)) if both else None,
        accuracy=_fraction(flagged == (y == 1)),
        real_accuracy=_fraction(~flagged[y == 0]),
        fake_accuracy=_fraction(flagged[y == 1]),
        best_accuracy=best_acc, best_threshold=best_t,
    )


def mean_metrics(name: str, rows: Sequence[Metrics]) -> Metrics:
    """The mean of each metric over the rows that define it; counts are summed."""
    means = {}
    for key in _AVERAGED:
        values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
        means[key] = float(np.mean(values)) if values else None
    return Metrics(name, sum(r.n_real for r in rows), sum(r.n_fake for r in rows), n_sets=len(rows), **means)


def summarise(scored: Mapping[str, tuple[Sequence[int], Sequence[float]]], threshold: float = 0.5,
              families: Mapping[str, str] | None = None, balanced: bool = False) -> Report:
    """A report from {set name: (labels, scores)}. `families` maps set names to family names; sets it
    does not name form the family "other". Without it there are no family rows. `balanced`: each
    set's AP class-balanced (leave-generator-out sets); the pooled row's stays plain."""
    sets = [set_metrics(name, labels, scores, threshold, balanced) for name, (labels, scores) in scored.items()]
    grouped: dict[str, list[Metrics]] = {}
    if families is not None:
        for row in sets:
            grouped.setdefault(families.get(row.name, OTHER_FAMILY), []).append(row)
    all_labels = [label for labels, _ in scored.values() for label in labels]
    all_scores = [score for _, scores in scored.values() for score in scores]
    return Report(threshold, sets, mean_metrics(MEAN, sets),
                  [mean_metrics(family, rows) for family, rows in sorted(grouped.items())],
                  replace(set_metrics(POOLED, all_labels, all_scores, threshold), n_sets=len(sets)))


def fpr_threshold(real_scores: Sequence[float], target_fpr: float, fake_scores: Sequence[float] = ()) -> float:
    """The lowest threshold (flag when score >= threshold) that flags at most `target_fpr` of the reals.
    It sits halfway between the highest real that must stay unflagged and the next higher score of
    any image, so that no fake above that real is lost and the cut does not lie on an image's score
    (with no higher score: one rounding unit of the engine's probabilities above it)."""
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(f"target FPR must lie between 0 and 1, got {target_fpr}")
    reals = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if not reals.size:
        raise ValueError("choosing a threshold needs real images")
    allowed = math.floor(target_fpr * reals.size + 1e-9)
    if allowed >= reals.size:
        return 0.0
    kept = reals[allowed]  # the highest real that must not be flagged
    scores = np.concatenate((reals, np.asarray(fake_scores, dtype=np.float64)))
    higher = scores[scores > kept]
    return float(0.5 * (kept + higher.min())) if higher.size else min(1.0, float(kept) + 2 * PROBABILITY_UNIT)


# --- bootstrap intervals -------------------------------------------------------------------------------

BOOTSTRAP_REPLICATES, BOOTSTRAP_LEVEL = 1000, 0.9


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval: `level` of the replicates' figures lie between `low` and `high`."""

    low: float
    high: float
    level: float = BOOTSTRAP_LEVEL

    def to_dict(self) -> dict:
        return asdict(self)


def weighted_ap(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float | None:
    """Average precision with per-image weights (a weight of k counts the image k times), as sklearn's
    average_precision_score computes it, ties included; None without weight in both classes. Written out
    because the bootstrap calls it tens of thousands of times."""
    order = np.argsort(-scores, kind="stable")
    y, s, w = labels[order], scores[order], weights[order]
    true_pos, false_pos = np.cumsum(w * y), np.cumsum(w * (1 - y))
    cut = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last position of each distinct score
    tp, fp = true_pos[cut], false_pos[cut]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    precision = tp / np.maximum(tp + fp, 1e-300)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _figures(labels: np.ndarray, scores: np.ndarray, counts: np.ndarray, members: Mapping[str, np.ndarray],
             balanced: bool) -> dict[str, float | None]:
    """Each set's AP, their mean and the pooled AP, with each image counted `counts` times."""
    figures: dict[str, float | None] = {}
    pooled = np.zeros_like(counts)
    for name, index in members.items():
        y, w = labels[index], counts[index].astype(np.float64)
        pooled[index] += counts[index]
        figures[name] = weighted_ap(y, scores[index], class_balanced(y, w) if balanced else w)
    defined = [v for v in figures.values() if v is not None]
    figures[MEAN] = float(np.mean(defined)) if defined else None
    figures[POOLED] = weighted_ap(labels, scores, pooled.astype(np.float64))
    return figures


def _mean_figures(runs: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Each figure's mean over runs (None where a run leaves it undefined)."""
    return {key: None if any(r[key] is None for r in runs) else float(np.mean([r[key] for r in runs]))
            for key in runs[0]}


def ap_figures(labels: Sequence[int], scores: Sequence[float] | Sequence[Sequence[float]],
               members: Mapping[str, Sequence[int]], balanced: bool = False) -> dict[str, float | None]:
    """Each set's AP, their mean (MEAN) and the pooled AP (POOLED), on images indexed as for ap_intervals
    (several rows of scores: the mean of each figure over them)."""
    y = np.asarray(labels, dtype=np.int64)
    index = {name: np.asarray(ids, dtype=np.int64) for name, ids in members.items()}
    ones = np.ones(len(y), dtype=np.int64)
    return _mean_figures([_figures(y, s, ones, index, balanced)
                          for s in np.atleast_2d(np.asarray(scores, dtype=np.float64))])


def ap_intervals(labels: Sequence[int], scores: Sequence[float] | Sequence[Sequence[float]],
                 members: Mapping[str, Sequence[int]],
                 balanced: bool = False, baseline: Sequence[float] | Sequence[Sequence[float]] | None = None,
                 replicates: int = BOOTSTRAP_REPLICATES, level: float = BOOTSTRAP_LEVEL,
                 seed: int = 0) -> dict[str, Interval]:
    """Bootstrap intervals of each set's AP, of their mean (key MEAN) and of the pooled AP (POOLED).

    `labels` and `scores` hold each distinct image once; `members` maps each set to the indices of its
    images (held-out generators share their reals). Every replicate redraws the images with replacement
    within each stratum (label x the first set holding the image), so each set keeps its class counts and
    a shared real moves every set it is in. With `baseline` (another model's scores of the same images),
    the intervals are of the difference, figure(scores) - figure(baseline), on the same draws (paired).
    `scores` (and `baseline`) may hold one row per run (seeds of one recipe): each figure is then their mean."""
    y, runs = np.asarray(labels, dtype=np.int64), np.atleast_2d(np.asarray(scores, dtype=np.float64))
    others = None if baseline is None else np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    index = {name: np.asarray(ids, dtype=np.int64) for name, ids in members.items()}
    home = np.full(len(y), -1)
    for position, ids in enumerate(index.values()):
        home[ids[home[ids] < 0]] = position
    strata = [np.flatnonzero((home == h) & (y == label)) for h in np.unique(home) for label in (0, 1)]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(replicates):
        counts = np.zeros(len(y), dtype=np.int64)
        for stratum in (s_ for s_ in strata if s_.size):
            np.add.at(counts, stratum[rng.integers(0, stratum.size, stratum.size)], 1)
        figures = _mean_figures([_figures(y, s, counts, index, balanced) for s in runs])
        if others is not None:
            reference = _mean_figures([_figures(y, s, counts, index, balanced) for s in others])
            figures = {k: None if v is None or reference[k] is None else v - reference[k] for k, v in figures.items()}
        for key, value in figures.items():
            if value is not None:
                draws.setdefault(key, []).append(value)
    tail = 100 * (1 - level) / 2
    return {key: Interval(*map(float, np.percentile(values, [tail, 100 - tail])), level)
            for key, values in draws.items()}
