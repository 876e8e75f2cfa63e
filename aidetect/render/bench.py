"""Rendering a BenchReport: rich tables for people, one JSON document for programs."""

from __future__ import annotations

import dataclasses
import json

from rich.markup import escape
from rich.table import Table

from ..evaluation.bench import BenchReport, Rate


def _rate(rate: Rate) -> str:
    return f"{rate.median:.1f} [{rate.low:.1f}-{rate.high:.1f}]"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def bench_json(report: BenchReport) -> str:
    return json.dumps(dataclasses.asdict(report), indent=2) + "\n"


def bench_tables(report: BenchReport) -> list[Table]:
    """Environment, model speed, end-to-end scans, batching and variants (rates: median [min-max] images/s)."""
    env, config = report.environment, report.config
    setup = Table(title="bench: environment", show_header=False)
    weights = config.weights or f"{config.backbone} (random weights)"
    for key, value in (("device", f"{env.device} ({env.device_name})"), ("dtype", env.dtype),
                       ("memory layout", "channels-last" if env.channels_last else "NCHW"), ("torch", env.torch),
                       ("threads", f"{env.threads} intra-op, {env.interop_threads} inter-op, {env.cpus} CPUs"),
                       ("model", weights), ("batch size", report.batch_size), ("repeats", config.repeats),
                       ("decode workers", env.workers), ("python", env.python)):
        setup.add_row(key, str(value))

    speed = Table(title=escape(f"model speed, batch {report.batch_size} (images/s: median [min-max])"))
    speed.add_column("what")
    speed.add_column("images/s", justify="right")
    speed.add_row("backbone alone: 7 x batch 224 px passes (the floor)", _rate(report.backbone))
    speed.add_row(f"fused model on in-memory {config.ready_size} px images", _rate(report.fused))
    speed.add_row("overhead ratio (backbone time / fused time; 1.0 = free)", f"{report.overhead_ratio:.3f}")

    scans = Table(title=f"end-to-end scans of JPEG folders (decode workers: {env.workers})")
    for column in ("size", "images", "crops from workers", "images/s", "of fused rate", "reading provenance",
                   "real-only branch", "peak PSS MB", "peak RSS MB"):
        scans.add_column(column, justify="left" if column == "crops from workers" else "right")
    for entry in report.end_to_end:
        path = "candidates when smaller" if entry.path == "auto" else "whole images"
        share = "off" if entry.provenance_share is None else f"{100 * entry.provenance_share:.2f} % of the time"
        real_only = "none" if entry.real_only_share is None else f"{100 * entry.real_only_share:.1f} % of the time"
        scans.add_row(f"{entry.size} px", str(entry.images), path, _rate(entry.rate), f"{entry.fused_ratio:.2f}", share,
                      real_only, _mb(entry.peak_pss_mb), _mb(entry.peak_rss_mb))
    scans.caption = (f"memory of the process tree with its decode workers; before the scans: PSS "
                     f"{_mb(report.baseline_pss_mb)} MB, RSS {_mb(report.baseline_rss_mb)} MB. PSS splits shared "
                     f"pages between processes (the real footprint), the RSS sum counts them in each (a ceiling)")

    tables = [setup, speed, scans]
    if report.batching:
        batching = Table(title=f"batch sizes compared (in-memory {config.ready_size} px images)")
        for column in ("batch", "images/s", "speed-up over the smallest"):
            batching.add_column(column, justify="right")
        for entry in report.batching:
            batching.add_row(str(entry.batch), _rate(entry.rate), f"{entry.speedup:.2f}x")
        tables.append(batching)
    if report.variants:
        variants = Table(title=f"speed-ups over fp32 NCHW, batch {report.batch_size} (adopt only if max |dp| <= 1e-3)")
        for column in ("variant", "dtype", "images/s", "speed-up", "max |dp|", "images checked"):
            variants.add_column(column, justify="left" if column in ("variant", "dtype") else "right")
        for v in report.variants:
            diff = "-" if v.max_probability_diff is None else f"{v.max_probability_diff:.2e}"
            variants.add_row(v.name, v.dtype, _rate(v.rate), f"{v.speedup:.2f}x", diff, str(v.checked))
        tables.append(variants)
    return tables
