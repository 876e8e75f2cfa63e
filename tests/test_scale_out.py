"""Scale-out scans: resumable JSON lines after a kill, and torchrun ranks whose parts merge in input order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SCAN_OPTIONS, run_cli, write_image

from aidetect.distributed_scan import part_path, scan_to_jsonl
from aidetect.engine import Detector
from aidetect.inputs import iter_inputs
from aidetect.resume import ResultsError, in_order, interleave, merge_by_path, repair
from aidetect.runtime import World


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """40 small images and one unreadable file, so errors are resumed and merged like results."""
    root = tmp_path_factory.mktemp("many")
    for i in range(40):
        write_image(root / f"{i:03d}.png", 40 + i, 30, seed=i)
    (root / "020b.jpg").write_text("not a picture")
    return root


@pytest.fixture(scope="module")
def reference(tiny_checkpoint, folder, tmp_path_factory) -> bytes:
    """An uninterrupted single-process scan: the bytes every other way of scanning must reproduce."""
    target = tmp_path_factory.mktemp("reference") / "all.jsonl"
    result = run_cli("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--jsonl", "-o", target)
    assert result.exit_code == 1, result.output  # the unreadable file
    return target.read_bytes()


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _write(path: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(lines) + tail)
    return path


def _assert_same(actual: bytes, expected: bytes) -> None:
    """The same records in the same order; probabilities and scores may move by rounding noise, since
    another batch composition (a resumed or sharded scan) changes CPU float sums in the last bits."""
    got, want = [json.loads(line) for line in _lines(actual)], [json.loads(line) for line in _lines(expected)]
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for a, b in zip(got, want):
        assert {k: v for k, v in a.items() if k not in ("probability", "boxes")} == \
            {k: v for k, v in b.items() if k not in ("probability", "boxes")}
        assert a["error"] is not None or abs(a["probability"] - b["probability"]) <= 1e-5
        assert [(x["x0"], x["y0"], x["x1"], x["y1"]) for x in a["boxes"]] == \
            [(x["x0"], x["y0"], x["x1"], x["y1"]) for x in b["boxes"]]
        assert all(abs(x["score"] - y["score"]) <= 1e-4 for x, y in zip(a["boxes"], b["boxes"]))


def _aidetect(*args) -> list[str]:
    return [sys.executable, "-m", "aidetect", *[str(a) for a in args]]


# --- the result file functions ---


def test_repair_drops_a_torn_last_line(tmp_path, reference):
    lines = _lines(reference)
    path = _write(tmp_path / "r.jsonl", lines[:3], lines[3][:25])
    names = repair(path)
    assert names == [json.loads(line)["path"] for line in lines[:3]]
    assert path.read_bytes() == b"".join(lines[:3])
    assert repair(tmp_path / "missing.jsonl") == []


def test_a_file_that_is_not_a_scan_result_is_left_alone(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("path,probability\na.png,0.5\n")
    with pytest.raises(ResultsError, match="line 1 is not a scan result"):
        repair(path)
    assert path.read_text() == "path,probability\na.png,0.5\n"


def test_order_check_interleave_and_merge(tmp_path, reference):
    lines = _lines(reference)
    names = [json.loads(line)["path"] for line in lines]
    assert in_order(_write(tmp_path / "all.jsonl", lines), names)
    assert not in_order(_write(tmp_path / "swapped.jsonl", [lines[1], lines[0], *lines[2:]]), names)
    assert not in_order(_write(tmp_path / "extra.jsonl", lines + lines[:1]), names)
    parts = [_write(tmp_path / f"p{r}", lines[r::3]) for r in range(3)]
    assert interleave(tmp_path / "merged.jsonl", parts, names)
    assert (tmp_path / "merged.jsonl").read_bytes() == reference
    assert not interleave(tmp_path / "bad.jsonl", parts[::-1], names) and not (tmp_path / "bad.jsonl").exists()
    merge_by_path(tmp_path / "keyed.jsonl", parts[::-1], names + names[:1])  # an input listed twice
    assert (tmp_path / "keyed.jsonl").read_bytes() == reference + lines[0]
    with pytest.raises(ResultsError):
        merge_by_path(tmp_path / "short.jsonl", parts[:2], names)


def test_shard_split_and_part_names():
    world = World(rank=1, size=3)
    assert world.take(list(range(8))) == [1, 4, 7]
    assert part_path(Path("out/r.jsonl"), world) == Path("out/r.jsonl.part-1-of-3")
    assert part_path(Path("r.jsonl"), World()) == Path("r.jsonl")


# --- resuming ---


def test_resume_after_an_earlier_run_with_another_world_size(tiny_checkpoint, folder, reference, tmp_path):
    """Parts of an interrupted 2-process run, one torn, are taken up by a single process and removed."""
    lines, output = _lines(reference), tmp_path / "r.jsonl"
    _write(tmp_path / "r.jsonl.part-0-of-2", lines[0::2][:5], lines[10][:30])
    _write(tmp_path / "r.jsonl.part-1-of-2", lines[1::2][:7])
    detector = Detector.load(tiny_checkpoint, device="cpu", batch_size=4)
    totals = scan_to_jsonl(detector, list(iter_inputs([str(folder)])), output, World(), resume=True)
    _assert_same(output.read_bytes(), reference)
    assert (totals.count, totals.failed) == (41, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_resume_of_a_finished_scan_scans_nothing(tiny_checkpoint, folder, reference, tmp_path):
    output = _write(tmp_path / "done.jsonl", _lines(reference))
    stamp = output.stat().st_mtime_ns
    result = run_cli("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--jsonl", "-o", output, "--resume")
    assert result.exit_code == 1 and "41 inputs" in result.stderr
    assert output.read_bytes() == reference and output.stat().st_mtime_ns == stamp


def test_resume_needs_jsonl_and_a_file(tiny_checkpoint, folder, tmp_path):
    assert run_cli("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--jsonl", "--resume").exit_code == 2
    assert run_cli("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--csv", "-o", tmp_path / "r.csv",
                   "--resume").exit_code == 2


def test_a_killed_scan_resumes_without_losing_or_repeating(tiny_checkpoint, folder, reference, tmp_path):
    output = tmp_path / "killed.jsonl"
    command = _aidetect("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--batch-size", "1",
                        "--jsonl", "-o", output, "--resume")
    scan = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (output.exists() and output.read_bytes().count(b"\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.002)
    scan.send_signal(signal.SIGKILL)
    scan.wait()
    written = output.read_bytes()
    assert 2 <= written.count(b"\n") < len(_lines(reference)), "the kill came too late to test anything"
    _assert_same(written[:written.rfind(b"\n") + 1], b"".join(_lines(reference)[:written.count(b"\n")]))
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr  # the unreadable file, as in the reference
    _assert_same(output.read_bytes(), reference)


# --- several processes (torchrun, gloo on the CPU) ---


def _torchrun(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "aidetect", *[str(a) for a in args]]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def test_two_ranks_merge_into_the_single_process_result(tiny_checkpoint, folder, reference, tmp_path):
    result = _torchrun("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--jsonl", "-o", "out.jsonl",
                       cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]  # every rank exits like a single scan would
    _assert_same((tmp_path / "out.jsonl").read_bytes(), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # parts removed
    assert result.stderr.count("41 inputs:") == 1  # rank 0 alone reports


def test_two_ranks_resume_their_parts(tiny_checkpoint, folder, reference, tmp_path):
    lines = _lines(reference)
    _write(tmp_path / "out.jsonl.part-0-of-2", lines[0::2][:6], lines[12][:40])  # rank 0 killed mid-line
    result = _torchrun("scan", folder, "-w", tiny_checkpoint, *SCAN_OPTIONS, "--jsonl", "-o", "out.jsonl",
                       "--resume", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    _assert_same((tmp_path / "out.jsonl").read_bytes(), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
