"""Metrics against values worked out by hand on tiny arrays."""

import numpy as np
import pytest

from aidetect.evaluation.metrics import balanced_ap, best_threshold, mean_metrics, set_metrics, summarise


def test_set_metrics_by_hand():
    # scores sorted: 0.9(F) 0.8(R) 0.7(F) 0.4(F) 0.3(R) 0.2(R)
    labels = [1, 0, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.2]
    m = set_metrics("s", labels, scores, threshold=0.5)
    assert (m.n_real, m.n_fake) == (3, 3)
    # AP = mean precision at each fake: 1/1, 2/3, 3/4
    assert m.ap == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # AUC: pairs (fake > real) out of 9: 0.9 beats 3, 0.7 beats 2, 0.4 beats 2 -> 7/9
    assert m.auc == pytest.approx(7 / 9)
    # flagged at 0.5: 0.9 0.8 0.7 -> reals right 2/3, fakes right 2/3
    assert m.real_accuracy == pytest.approx(2 / 3)
    assert m.fake_accuracy == pytest.approx(2 / 3)
    assert m.accuracy == pytest.approx(4 / 6)
    # best: flag down to 0.4 -> 3 fakes + 2 reals right = 5/6
    assert m.best_accuracy == pytest.approx(5 / 6)
    assert m.best_threshold == pytest.approx(0.4)


def test_threshold_is_inclusive():
    m = set_metrics("s", [0, 1], [0.5, 0.5], threshold=0.5)
    assert m.real_accuracy == 0.0 and m.fake_accuracy == 1.0


def test_best_threshold_respects_ties_and_all_real():
    # tied scores cannot be split by any threshold
    accuracy, threshold = best_threshold(np.array([0, 1, 1]), np.array([0.6, 0.6, 0.2]))
    assert accuracy == pytest.approx(2 / 3)
    # flag nothing (threshold above 0.6) or everything (0.2): both 2/3; the lowest wins
    assert threshold == pytest.approx(0.2)
    accuracy, threshold = best_threshold(np.array([0, 0]), np.array([0.9, 0.1]))
    assert accuracy == 1.0 and threshold > 0.9


def test_single_class_set_has_no_ap_or_auc():
    m = set_metrics("reals only", [0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5)
    assert m.ap is None and m.auc is None
    assert m.fake_accuracy is None
    assert m.real_accuracy == pytest.approx(2 / 3) and m.accuracy == pytest.approx(2 / 3)
    assert m.best_accuracy == 1.0
    empty = set_metrics("empty", [], [])
    assert (empty.n_real, empty.n_fake, empty.ap, empty.accuracy) == (0, 0, None, None)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="equal length"):
        set_metrics("s", [0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        set_metrics("s", [0, 2], [0.5, 0.5])


def test_summary_mean_families_and_pooled():
    scored = {
        "perfect": ([0, 1], [0.2, 0.8]),          # AP 1, acc 1
        "inverted": ([0, 1], [0.8, 0.2]),         # AP 1/2, acc 0
        "reals": ([0, 0], [0.1, 0.3]),            # AP undefined, acc 1
    }
    report = summarise(scored, threshold=0.5, families={"perfect": "a", "inverted": "a"})
    assert [m.name for m in report.sets] == ["perfect", "inverted", "reals"]
    assert report.mean.ap == pytest.approx(0.75)  # mean over the sets that define AP
    assert report.mean.accuracy == pytest.approx(2 / 3)
    assert (report.mean.n_real, report.mean.n_fake, report.mean.n_sets) == (4, 2, 3)
    assert [(f.name, f.n_sets) for f in report.families] == [("a", 2), ("other", 1)]
    assert report.families[0].ap == pytest.approx(0.75) and report.families[1].ap is None
    # pooled: scores 0.8(F) 0.8(R) 0.3(R) 0.2(F) 0.2(R) 0.1(R): tied 0.8 pair counts as precision 1/2,
    # the fake at 0.2 ties a real too: precision there 2/5 -> AP = (1/2 + 2/5) / 2
    assert report.pooled.ap == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert report.pooled.n_sets == 3
    assert [kind for kind, _ in report.rows()] == ["set", "set", "set", "mean", "family", "family", "pooled"]
    assert summarise(scored).families == []


def test_mean_of_nothing_defined():
    m = mean_metrics("mean", [set_metrics("r", [0], [0.1])])
    assert m.ap is None and m.accuracy == 1.0


def test_balanced_ap_does_not_depend_on_the_share_of_fakes():
    # A generator with 3 fakes against 300 reals: plain AP falls with the share of fakes, the
    # class-balanced AP equals that of the same scores with the classes in equal numbers.
    rng = np.random.default_rng(0)
    real, fake = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    balanced = set_metrics("even", [0] * 300 + [1] * 300, np.r_[real, fake])
    few = np.r_[real, fake[::100]]
    labels = [0] * 300 + [1] * 3
    assert set_metrics("few", labels, few).ap < 0.5
    weighted = set_metrics("few", labels, few, balanced=True).ap
    assert weighted == pytest.approx(balanced_ap(np.array(labels), few))
    even_three = set_metrics("even3", [0] * 300 + [1] * 300, np.r_[real, np.repeat(fake[::100], 100)]).ap
    assert weighted == pytest.approx(even_three)


# --- bootstrap intervals ---

def test_weighted_ap_is_sklearns_with_ties_and_weights():
    from sklearn.metrics import average_precision_score

    from aidetect.evaluation.metrics import weighted_ap

    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 50))
        y, s, w = rng.integers(0, 2, n), np.round(rng.random(n), 1), rng.integers(0, 4, n).astype(float)
        if (w * y).sum() and (w * (1 - y)).sum():
            assert weighted_ap(y, s, w) == pytest.approx(average_precision_score(y, s, sample_weight=w), abs=1e-12)
            checked += 1
    assert checked > 200
    assert weighted_ap(np.array([1, 1]), np.array([0.2, 0.3]), np.ones(2)) is None  # one class only


def _lgo(seed: int = 0, fakes: int = 30, shift: float = 1.0):
    """Held-out generator sets: 3 generators' fakes, each set against the same 100 reals."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(100, int), np.ones(3 * fakes, int)]
    scores = np.r_[rng.normal(0, 1, 100), rng.normal(shift, 1, 3 * fakes)]
    members = {f"g{g}": np.r_[np.arange(100), 100 + g * fakes + np.arange(fakes)] for g in range(3)}
    return labels, scores, members


def test_intervals_hold_the_figures_and_narrow_with_more_images():
    from aidetect.evaluation.metrics import MEAN, POOLED, ap_figures, ap_intervals

    labels, scores, members = _lgo()
    point = ap_figures(labels, scores, members, balanced=True)
    intervals = ap_intervals(labels, scores, members, balanced=True, replicates=300)
    assert set(intervals) == {"g0", "g1", "g2", MEAN, POOLED}
    for key, interval in intervals.items():
        assert interval.low < point[key] < interval.high and interval.level == 0.9
    wide = intervals[MEAN].high - intervals[MEAN].low
    labels, scores, members = _lgo(fakes=300)
    narrow = ap_intervals(labels, scores, members, balanced=True, replicates=300)[MEAN]
    assert narrow.high - narrow.low < wide


def test_paired_difference_of_a_model_with_itself_is_zero_and_a_better_one_is_above_zero():
    from aidetect.evaluation.metrics import MEAN, ap_intervals

    labels, scores, members = _lgo()
    same = ap_intervals(labels, scores, members, balanced=True, baseline=scores, replicates=100)[MEAN]
    assert (same.low, same.high) == (0.0, 0.0)
    better = scores + np.where(labels == 1, 1.0, 0.0)  # every fake scored higher
    gain = ap_intervals(labels, better, members, balanced=True, baseline=scores, replicates=200)[MEAN]
    assert gain.low > 0


def test_several_runs_are_compared_by_the_mean_of_their_figures():
    from aidetect.evaluation.metrics import MEAN, ap_figures, ap_intervals

    labels, scores, members = _lgo()
    better = scores + np.where(labels == 1, 0.5, 0.0)
    one, two = ap_figures(labels, scores, members, True), ap_figures(labels, better, members, True)
    both = ap_figures(labels, [scores, better], members, True)
    assert both[MEAN] == pytest.approx((one[MEAN] + two[MEAN]) / 2)
    paired = ap_intervals(labels, [better, better], members, True, baseline=scores, replicates=100)[MEAN]
    alone = ap_intervals(labels, better, members, True, baseline=scores, replicates=100)[MEAN]
    assert (paired.low, paired.high) == pytest.approx((alone.low, alone.high))
