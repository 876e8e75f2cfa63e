"""`aidetect bench` runs end to end with small settings and counts worker memory (no timings judged here)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time

import pytest
import torch
from helpers import run_cli, write_image

from aidetect.evaluation.bench import BenchConfig, PeakMemory, run_bench
from aidetect.render.bench import bench_tables

SMALL = dict(backbone="tiny", device="cpu", repeats=1, sizes=(64, 300), images=2, workers=0, ready_size=256)


def test_quick_bench_runs_at_the_engine_defaults():
    report = run_bench(BenchConfig(**SMALL))
    assert report.batch_size == 1 and report.environment.channels_last  # the engine's CPU defaults
    assert report.backbone.median > 0 and report.fused.median > 0 and report.overhead_ratio > 0
    assert [(e.size, e.path) for e in report.end_to_end] == [(64, "auto"), (300, "auto")]
    assert all(entry.fused_ratio > 0 for entry in report.end_to_end) and report.environment.workers == 0
    assert report.batching == [] and report.variants == []
    assert len(bench_tables(report)) == 3


def test_scan_ratio_pairs_each_scan_with_a_fused_pass(monkeypatch):
    """The ratio compares a scan with the fused pass just before it: 2 images scanned at 0.06 s each
    against 2 in memory at 0.03 s each is 0.5, however the machine's speed drifts between repeats. The
    clock is simulated, so a busy machine cannot move the figures."""
    from types import SimpleNamespace

    from aidetect.evaluation import bench

    clock, slow = [0.0], iter([1, 2, 4])  # a drifting machine: each repeat's pair slowed alike
    factor = [1]

    def pace(seconds_per_image, count):
        clock[0] += seconds_per_image * count * factor[0]

    def fused(items):
        factor[0] = next(slow)
        pace(0.03, len(items))

    branch = SimpleNamespace(score=lambda pixels: pace(0.009, 1))
    detector = SimpleNamespace(device=torch.device("cpu"), batch_size=2, predict_decoded=fused, provenance=True,
                               real_photo=branch, predict=lambda paths: pace(0.06, len(paths)))
    monkeypatch.setattr(bench, "load_image", lambda path: path)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench, "PeakMemory", lambda: contextlib.nullcontext(SimpleNamespace(peak=None)))
    monkeypatch.setattr(bench, "read_provenance", lambda path: pace(0.0006, 1))
    entry = bench.end_to_end(detector, ["a", "b"], 64, "auto", 3, ["x", "y"])
    assert entry.fused_ratio == pytest.approx(0.5)
    assert entry.rate.low < entry.rate.median < entry.rate.high  # the scans' own rates still drift
    assert entry.provenance_share == pytest.approx(0.0012 * 4 / (0.12 * 2))  # read at the last drift, vs the median scan
    assert entry.real_only_share == pytest.approx(0.018 * 4 / (0.12 * 2))  # scored likewise


def test_full_bench_reports_every_measurement(tmp_path):
    check = [write_image(tmp_path / f"{i}.png", 80, 60, seed=i) for i in range(2)]
    stages = []
    config = dataclasses.replace(BenchConfig(**SMALL, channels_last=True, check_dir=str(tmp_path)).full(),
                                 batch_size=2, repeats=1, batches=(1, 2), sizes=(64, 300), images=2)
    report = run_bench(config, stages.append)
    assert [(e.size, e.path) for e in report.end_to_end] == [(64, "auto"), (300, "auto"), (300, "whole")]
    assert all(e.peak_rss_mb >= e.peak_pss_mb >= report.baseline_pss_mb * 0.5 for e in report.end_to_end)
    assert [b.batch for b in report.batching] == [1, 2] and report.batching[0].speedup == 1.0
    (variant,) = report.variants
    assert variant.name == "channels-last" and variant.checked == len(check)
    assert variant.max_probability_diff < 1e-4  # same weights, another memory layout
    assert report.environment.dtype == "float32" and stages
    assert len(bench_tables(report)) == 5


def test_bench_cli_json():
    result = run_cli("bench", "--backbone", "tiny", "--device", "cpu", "--repeats", "1", "--sizes", "64",
                     "--images", "1", "--workers", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["backbone"] == "tiny" and doc["environment"]["torch"] and doc["batch_size"] == 1
    assert doc["overhead_ratio"] > 0 and doc["end_to_end"][0]["fused_ratio"] > 0
    assert doc["batching"] == [] and doc["variants"] == []


def test_bench_cli_rejects_bad_lists():
    assert run_cli("bench", "--batches", "1,x").exit_code == 2


def test_peak_memory_counts_child_processes():
    """A child holds 300 MB until the sampler has seen it (however slowly a busy machine samples)."""
    hold = "import sys; x = bytearray(300 * 2**20); print('ready', flush=True); sys.stdin.readline()"
    with PeakMemory(interval=0.02) as memory:
        before = memory.peak
        child = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        for _ in range(3000):  # the sampler's own pace decides; a sampler that misses children never gets there
            if memory.peak.rss - before.rss > 250 * 2**20 and memory.peak.pss - before.pss > 250 * 2**20:
                break
            time.sleep(0.02)
        child.communicate("\n")
    assert memory.peak.rss - before.rss > 250 * 2**20 and memory.peak.pss - before.pss > 250 * 2**20
