"""Rendering evaluation results: a rich table for people, JSON and CSV for programs, and the
robustness sweep's files (JSON, CSV and two PNG plots of AP against JPEG quality and blur sigma)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Sequence

from rich.table import Table

from ..atomic import atomic_open
from ..evaluation.calibrate import Calibration
from ..evaluation.evaluate import Comparison, EvalResult
from ..evaluation.metrics import MEAN, POOLED, Interval, Metrics

CSV_FIELDS = ["jpeg_quality", "blur_sigma", "scale", "row", "name", "n_sets", "n_real", "n_fake", "ap", "ap_low", "ap_high", "auc",
              "accuracy", "real_accuracy", "fake_accuracy", "best_accuracy", "best_threshold"]


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(interval: Interval | None, signed: bool = False) -> str:
    if interval is None:
        return "-"
    sign = "+" if signed else ""
    return f"[{interval.low:{sign}.3f}, {interval.high:{sign}.3f}]"


def interval_of(result: EvalResult, kind: str, row: Metrics) -> Interval | None:
    """The bootstrap interval of a report row's AP (none for family means)."""
    key = {"set": row.name, "mean": MEAN, "pooled": POOLED}.get(kind)
    return result.intervals.get(key) if key else None


def report_table(result: EvalResult) -> Table:
    """One row per set, then the mean over sets (mAP), family means, and all images pooled; each AP with its
    bootstrap interval."""
    report = result.report
    level = next(iter(result.intervals.values())).level if result.intervals else 0.9
    table = Table(title=f"threshold {report.threshold:g}, perturbation: {result.perturbation.label}")
    for name in ("set", "real", "fake", "AP", f"AP {level:.0%} interval", "AUC", "acc", "real acc", "fake acc",
                 "best acc", "best t"):
        table.add_column(name, justify="left" if name == "set" else "right")
    rows = report.rows()
    for index, (kind, row) in enumerate(rows):
        name = {"mean": f"mean of {row.n_sets} sets", "family": f"family {row.name}"}.get(kind, row.name)
        last_of_kind = index + 1 == len(rows) or rows[index + 1][0] != kind
        table.add_row(name, str(row.n_real), str(row.n_fake), _number(row.ap), _interval(interval_of(result, kind, row)),
                      _number(row.auc), _number(row.accuracy),
                      _number(row.real_accuracy), _number(row.fake_accuracy), _number(row.best_accuracy),
                      _number(row.best_threshold, 4), style="bold" if kind in ("mean", "pooled") else None,
                      end_section=last_of_kind)
    return table


def results_json(results: Sequence[EvalResult], checkpoint: dict) -> str:
    return json.dumps({"checkpoint": checkpoint, "results": [r.to_dict() for r in results]}, indent=2) + "\n"


def results_csv(results: Sequence[EvalResult]) -> str:
    """Long format: one line per (perturbation, row), row kind set/mean/family/pooled."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        for kind, row in result.report.rows():
            interval = interval_of(result, kind, row)
            values = {**result.perturbation.to_dict(), **row.to_dict(), "row": kind,
                      "ap_low": interval and interval.low, "ap_high": interval and interval.high}
            writer.writerow({key: "" if values[key] is None else values[key] for key in CSV_FIELDS})
    return buffer.getvalue()


def _ap_values(rows: Sequence[Metrics]) -> list[float]:
    return [math.nan if row.ap is None else row.ap for row in rows]  # a gap where AP is undefined


def _plot(results: Sequence[EvalResult], attribute: str, xlabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xs = [getattr(r.perturbation, attribute) for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for index, row in enumerate(results[0].report.sets):
        ax.plot(xs, _ap_values([r.report.sets[index] for r in results]), marker=".", linewidth=1, alpha=0.7, label=row.name)
    ax.plot(xs, _ap_values([r.report.mean for r in results]), marker="o", linewidth=2.5, color="black", label="mean (mAP)")
    ax.plot(xs, _ap_values([r.report.pooled for r in results]), marker="s", linewidth=2, linestyle="--", color="grey",
            label="all images pooled")
    ax.set(xlabel=xlabel, ylabel="average precision", ylim=(0, 1.02), xticks=xs)
    if attribute == "jpeg_quality":
        ax.invert_xaxis()  # stronger perturbation to the right, as for blur
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def write_sweep(results: Sequence[EvalResult], checkpoint: dict, out_dir: str | os.PathLike) -> list[Path]:
    """sweep.json, sweep.csv, ap_vs_jpeg.png and ap_vs_blur.png in `out_dir`; returns their paths."""
    out = Path(out_dir)
    written = [out / "sweep.json", out / "sweep.csv", out / "ap_vs_jpeg.png", out / "ap_vs_blur.png"]
    for path, text in zip(written, (results_json(results, checkpoint), results_csv(results))):
        with atomic_open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    jpeg = [r for r in results if r.perturbation.jpeg_quality is not None and not r.perturbation.blur_sigma]
    blur = [r for r in results if r.perturbation.jpeg_quality is None]
    _plot(jpeg, "jpeg_quality", "JPEG quality", written[2])
    _plot(blur, "blur_sigma", "Gaussian blur sigma (pixels)", written[3])
    return written


def sweep_table(results: Sequence[EvalResult]) -> Table:
    """One line per perturbation: mean over sets (mAP, accuracies) and the pooled AP."""
    table = Table(title="robustness sweep (means over sets)")
    for name in ("perturbation", "mAP", "pooled AP", "acc", "real acc", "fake acc", "best acc"):
        table.add_column(name, justify="left" if name == "perturbation" else "right")
    for result in results:
        mean = result.report.mean
        table.add_row(result.perturbation.label, _number(mean.ap), _number(result.report.pooled.ap),
                      _number(mean.accuracy), _number(mean.real_accuracy), _number(mean.fake_accuracy),
                      _number(mean.best_accuracy))
    return table


def comparison_table(comparison: Comparison, candidate: str, baseline: str) -> Table:
    """Per set, the mean and all images pooled: each checkpoint's AP and the paired interval of the difference."""
    level = next(iter(comparison.difference.values())).level if comparison.difference else 0.9
    table = Table(title=f"{candidate} against {baseline}: AP, and the {level:.0%} bootstrap interval of the difference")
    for name in ("set", "candidate AP", "baseline AP", "difference", "interval"):
        table.add_column(name, justify="left" if name == "set" else "right")
    for key in [*comparison.names, MEAN, POOLED]:
        a, b = comparison.candidate.get(key), comparison.baseline.get(key)
        diff = None if a is None or b is None else a - b
        table.add_row(key, _number(a), _number(b), "-" if diff is None else f"{diff:+.3f}",
                      _interval(comparison.difference.get(key), signed=True),
                      style="bold" if key in (MEAN, POOLED) else None, end_section=key == comparison.names[-1])
    return table


def calibration_table(calibration: Calibration) -> Table:
    """The operating point and how it does on the calibration images, per real source."""
    c = calibration
    table = Table(title=f"operating point on {c.n_real} reals and {c.n_fake} fakes", show_header=False)
    table.add_row("generated at or above", f"{c.threshold:.6f} (flags {c.fpr:.3f} of the reals; target "
                                           f"{c.target_fpr:g} on every source)")
    if c.lower_threshold is not None:
        table.add_row("no sign of generation below", f"{c.lower_threshold:.6f} ({c.missed:.3f} of the fakes; "
                                                     f"target {c.target_miss:g})")
        table.add_row("uncertain between", f"{c.uncertain['real']:.3f} of the reals, {c.uncertain['fake']:.3f} of the fakes")
        table.add_row("fakes called generated", f"{c.tpr:.3f}")
    table.add_row("logit bias", f"{c.logit_bias:+.4f}")
    for source, accuracy in c.real_accuracy.items():
        table.add_row(f"real accuracy: {source}", f"{accuracy:.3f}")
    return table
