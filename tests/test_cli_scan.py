"""`aidetect scan` and `aidetect info` as a user and a program see them: formats, files, exit codes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys

import pytest
from helpers import SCAN_OPTIONS, run_cli, scan_json, write_image

from aidetect.results import record_label


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three images of different sizes, one in a sub-folder."""
    root = tmp_path_factory.mktemp("photos")
    write_image(root / "a.png", 320, 240, seed=1)
    write_image(root / "b.jpg", 90, 400, seed=2)
    (root / "sub").mkdir()
    write_image(root / "sub" / "c.webp", 640, 200, seed=3)
    return root


SIZES = {"a.png": (320, 240), "b.jpg": (90, 400), "c.webp": (640, 200)}


def _scan(checkpoint, *args):
    return run_cli("scan", "-w", checkpoint, *SCAN_OPTIONS, *args)


def _assert_boxes_inside(boxes: list[tuple[int, int, int, int]], width: int, height: int) -> None:
    assert len(boxes) == 6
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def _check_records(records: list[dict]) -> None:
    """One record per image, each complete, its size right and its boxes inside it."""
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in records) == sorted(SIZES)
    for record in records:
        width, height = SIZES[record["path"].rsplit("/", 1)[-1]]
        assert (int(record["width"]), int(record["height"])) == (width, height)
        assert 0.0 <= float(record["probability"]) <= 1.0 and record_label(record) in ("no sign of generation", "generated")
        _assert_boxes_inside(record["boxes"], width, height)


def _from_json(text: str) -> list[dict]:
    doc = json.loads(text)
    assert doc["count"] == 3 and doc["errors"] == 0 and doc["checkpoint"]["backbone"] == "tiny"
    return [{**r, "boxes": [(b["x0"], b["y0"], b["x1"], b["y1"]) for b in r["boxes"]]} for r in doc["results"]]


def _from_jsonl(text: str) -> list[dict]:
    lines = text.splitlines()
    assert len(lines) == 3
    return _from_json(json.dumps({"count": 3, "errors": 0, "checkpoint": {"backbone": "tiny"},
                                  "results": [json.loads(line) for line in lines]}))


def _from_csv(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["boxes"] = [tuple(int(v) for v in box.split(",")) for box in row["boxes"].split(";")]
        assert row["error"] == ""
    return rows


PARSERS = {"--json": _from_json, "--jsonl": _from_jsonl, "--csv": _from_csv}


@pytest.mark.parametrize("flag", PARSERS)
def test_machine_formats_parse_and_boxes_lie_inside(tiny_checkpoint, folder, flag):
    result = _scan(tiny_checkpoint, flag, folder)
    assert result.exit_code == 0, result.output
    _check_records(PARSERS[flag](result.stdout))
    assert "3 inputs" in result.stderr  # the summary never mixes into the data


@pytest.mark.parametrize("flag", [*PARSERS, "--format=table"])
def test_output_file_is_written(tiny_checkpoint, folder, tmp_path, flag):
    target = tmp_path / "out" / "results.txt"
    result = _scan(tiny_checkpoint, flag, "--output", target, folder)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    if flag in PARSERS:
        _check_records(PARSERS[flag](text))
    else:
        assert all(name in text for name in SIZES) and "P(generated)" in text
    assert [p.name for p in target.parent.iterdir()] == ["results.txt"]  # no temporary file left behind


def test_format_option_equals_flag(tiny_checkpoint, folder):
    by_flag = _scan(tiny_checkpoint, "--csv", folder)
    by_option = _scan(tiny_checkpoint, "--format", "csv", folder)
    assert by_flag.stdout == by_option.stdout and by_option.exit_code == 0


def test_table_lists_every_image(tiny_checkpoint, folder):
    result = _scan(tiny_checkpoint, folder)
    assert result.exit_code == 0
    assert all(name in result.stdout for name in SIZES) and "verdict" in result.stdout


def test_exit_status_1_when_some_input_is_unreadable(tiny_checkpoint, folder, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, doc, stderr = scan_json(tiny_checkpoint, folder, tmp_path / "broken.png")
    assert code == 1 and doc["count"] == 4 and doc["errors"] == 1
    assert "1 unreadable" in stderr


def test_exit_status_1_when_nothing_to_scan(tiny_checkpoint, tmp_path):
    (tmp_path / "notes.txt").write_text("no pictures here")
    result = _scan(tiny_checkpoint, tmp_path)
    assert result.exit_code == 1 and "no images found" in result.stderr


@pytest.mark.parametrize("args", [
    ["--json", "--csv"],
    ["--jsonl", "--format", "json"],
    ["--device", "toaster"],
    ["--threshold", "1.5"],
    ["--batch-size", "0"],
])
def test_usage_errors_exit_2(tiny_checkpoint, folder, args):
    result = _scan(tiny_checkpoint, *args, folder)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"PK\x03\x04 not really a zip"])
def test_bad_weights_file_exits_2(folder, tmp_path, content):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(content)
    result = run_cli("scan", "-w", weights, *SCAN_OPTIONS, folder)
    assert result.exit_code == 2 and str(weights) in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_missing_weights_file_exits_2(folder, tmp_path):
    result = run_cli("scan", "-w", tmp_path / "nope.pt", *SCAN_OPTIONS, folder)
    assert result.exit_code == 2 and "no such checkpoint" in result.stderr


def test_weights_from_the_environment(tiny_checkpoint, folder):
    from typer.testing import CliRunner

    from aidetect.cli import app

    result = CliRunner().invoke(app, ["scan", "--json", *SCAN_OPTIONS, str(folder)],
                                env={"AIDETECT_WEIGHTS": str(tiny_checkpoint)})
    assert result.exit_code == 0 and json.loads(result.stdout)["checkpoint"]["path"] == str(tiny_checkpoint)


# --- which files a folder scan picks up ---

def test_images_are_found_by_content(tiny_checkpoint, tmp_path):
    write_image(tmp_path / "photo.dat", format="JPEG")
    (tmp_path / "notes.txt").write_text("a text file is not scanned")
    (tmp_path / "readme").write_text("nor is this")
    code, doc, _ = scan_json(tiny_checkpoint, tmp_path)
    assert code == 0
    assert [r["path"] for r in doc["results"]] == [str(tmp_path / "photo.dat")]


def test_no_recursive_stays_in_the_folder(tiny_checkpoint, folder):
    _, deep, _ = scan_json(tiny_checkpoint, folder)
    _, flat, _ = scan_json(tiny_checkpoint, "--no-recursive", folder)
    assert deep["count"] == 3
    assert sorted(r["path"] for r in flat["results"]) == [str(folder / "a.png"), str(folder / "b.jpg")]


def test_glob_pattern(tiny_checkpoint, folder):
    code, doc, _ = scan_json(tiny_checkpoint, str(folder / "*.png"))
    assert code == 0 and [r["path"] for r in doc["results"]] == [str(folder / "a.png")]


# --- aidetect info ---

def test_info_json(tiny_checkpoint):
    result = run_cli("info", "-w", tiny_checkpoint, "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert card["config"]["backbone"] == "tiny" and card["threshold"] == 0.5 and card["name"] == "tiny-test"
    assert card["parameters"] > 0 and card["size_bytes"] == tiny_checkpoint.stat().st_size


def test_info_table(tiny_checkpoint):
    result = run_cli("info", "-w", tiny_checkpoint)
    assert result.exit_code == 0 and "sha256" in result.stdout and "tiny" in result.stdout


# --- the installed command itself ---

def test_installed_command(tiny_checkpoint, folder, tmp_path):
    (tmp_path / "broken.jpg").write_text("text")
    command = [sys.executable, "-m", "aidetect", "scan", "-w", str(tiny_checkpoint), "--json", *SCAN_OPTIONS,
               str(folder), str(tmp_path / "broken.jpg")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["errors"] == 1
    bad = subprocess.run([sys.executable, "-m", "aidetect", "info", "-w", str(tmp_path / "broken.jpg")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "broken.jpg" in bad.stderr
