"""`aidetect scan` on folders holding a bad file beside a good image: the bad one is a one-line error,
the good one is still scanned, and the exit status is 1. Odd but valid images scan fine."""

from __future__ import annotations

import csv
import io
import json
import os
import select
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import (SCAN_OPTIONS, corrupt_png_chunk, exif_rotated_jpeg, huge_png_header, run_cli, scan_json,
                     truncated_jpeg, write_image)
from PIL import Image

from aidetect.inputs import iter_inputs


def _by_path(doc: dict) -> dict[str, dict]:
    return {result["path"]: result for result in doc["results"]}


def _assert_scanned(result: dict, width: int, height: int) -> None:
    assert result["error"] is None and 0.0 <= result["probability"] <= 1.0
    assert (result["width"], result["height"]) == (width, height)
    assert len(result["boxes"]) == 6
    for box in result["boxes"]:
        assert 0 <= box["x0"] < box["x1"] <= width and 0 <= box["y0"] < box["y1"] <= height, box


def _assert_one_line_error(result: dict, reason: str) -> None:
    assert result["probability"] is None and result["boxes"] == []
    assert reason in result["error"] and "\n" not in result["error"]


# --- a bad file beside a good image ---

def _text_named_jpg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("shopping list\n")
    return path


def _zero_bytes(folder: Path) -> Path:
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path


BAD_FILES = {
    "zero-byte file": (_zero_bytes, "empty"),
    "text file named .jpg": (_text_named_jpg, "not an image"),
    "truncated JPEG": (lambda folder: truncated_jpeg(folder / "cut.jpg"), "truncated"),
    "PNG chunk with a bad CRC": (lambda folder: corrupt_png_chunk(folder / "crc.png"), "corrupt"),
    "20000x20000 declared in the header": (lambda folder: huge_png_header(folder / "bomb.png"), "too large"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_file_is_one_error_and_the_good_image_is_scanned(tiny_checkpoint, tmp_path, kind):
    make, reason = BAD_FILES[kind]
    bad = make(tmp_path)
    good = write_image(tmp_path / "good.png", 64, 48)
    code, doc, stderr = scan_json(tiny_checkpoint, tmp_path)
    assert code == 1, stderr
    assert doc["count"] == 2 and doc["errors"] == 1
    results = _by_path(doc)
    _assert_one_line_error(results[str(bad)], reason)
    _assert_scanned(results[str(good)], 64, 48)
    assert "Traceback" not in stderr


def test_bad_file_error_is_one_table_row(tiny_checkpoint, tmp_path):
    truncated_jpeg(tmp_path / "cut.jpg")
    write_image(tmp_path / "good.png")
    result = run_cli("scan", "-w", tiny_checkpoint, *SCAN_OPTIONS, tmp_path)
    assert result.exit_code == 1
    rows = [line for line in result.stdout.splitlines() if "error:" in line]
    assert len(rows) == 1 and "truncated" in rows[0]
    assert "1 unreadable" in result.stderr


def test_path_that_does_not_exist(tiny_checkpoint, tmp_path):
    good = write_image(tmp_path / "good.png")
    code, doc, _ = scan_json(tiny_checkpoint, tmp_path / "missing.png", good)
    assert code == 1
    missing, scanned = doc["results"]
    _assert_one_line_error(missing, "no such file")
    _assert_scanned(scanned, 64, 48)


# --- odd but valid images scan fine ---

def _one_pixel(folder: Path) -> tuple[Path, int, int]:
    Image.new("RGB", (1, 1), (90, 60, 30)).save(folder / "one.png")
    return folder / "one.png", 1, 1


def _sixteen_bit(folder: Path) -> tuple[Path, int, int]:
    ramp = np.linspace(0, 65535, 80 * 60).reshape(60, 80).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "deep.png")
    return folder / "deep.png", 80, 60


def _cmyk(folder: Path) -> tuple[Path, int, int]:
    Image.new("CMYK", (70, 50), (20, 200, 40, 10)).save(folder / "print.jpg")
    return folder / "print.jpg", 70, 50


def _palette_transparency(folder: Path) -> tuple[Path, int, int]:
    image = Image.new("P", (40, 30), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.paste(1, (10, 10, 30, 20))
    image.save(folder / "sticker.png", transparency=0)
    return folder / "sticker.png", 40, 30


def _animated(folder: Path) -> tuple[Path, int, int]:
    frames = [Image.new("RGB", (50, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=40, loop=0)
    return folder / "anim.gif", 50, 40


FINE_FILES = {
    "1x1 image": _one_pixel,
    "16-bit PNG": _sixteen_bit,
    "CMYK JPEG": _cmyk,
    "palette PNG with transparency": _palette_transparency,
    "animated GIF": _animated,
    "EXIF orientation 6": lambda folder: (exif_rotated_jpeg(folder / "cw.jpg", 6, 300, 150), 150, 300),
    "EXIF orientation 8": lambda folder: (exif_rotated_jpeg(folder / "ccw.jpg", 8, 300, 150), 150, 300),
    "1x20000 strip": lambda folder: (write_image(folder / "strip.png", 20000, 1), 20000, 1),
}


@pytest.mark.parametrize("kind", FINE_FILES)
def test_odd_but_valid_image_scans(tiny_checkpoint, tmp_path, kind):
    path, width, height = FINE_FILES[kind](tmp_path)
    write_image(tmp_path / "good.png", 64, 48)
    code, doc, stderr = scan_json(tiny_checkpoint, tmp_path)
    assert code == 0, stderr
    results = _by_path(doc)
    _assert_scanned(results[str(path)], width, height)  # EXIF: the rotated frame the user sees
    _assert_scanned(results[str(tmp_path / "good.png")], 64, 48)


# --- file system oddities ---

def test_directory_symlink_loop_ends_and_finds_each_image_once(tiny_checkpoint, tmp_path):
    (tmp_path / "a").mkdir()
    write_image(tmp_path / "a" / "photo.png")
    os.symlink(tmp_path, tmp_path / "a" / "loop", target_is_directory=True)
    os.symlink(tmp_path / "a", tmp_path / "b", target_is_directory=True)
    assert [item.path for item in iter_inputs([str(tmp_path)])] == [str(tmp_path / "a" / "photo.png")]
    code, doc, _ = scan_json(tiny_checkpoint, tmp_path)
    assert code == 0 and doc["count"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_in_a_folder_does_not_block_the_walk(tmp_path):
    write_image(tmp_path / "photo.png")
    os.mkfifo(tmp_path / "pipe")
    os.mkfifo(tmp_path / "pipe.jpg")
    found: list[str] = []
    walker = threading.Thread(target=lambda: found.extend(i.path for i in iter_inputs([str(tmp_path)])), daemon=True)
    walker.start()
    walker.join(10)
    try:
        assert not walker.is_alive(), "the walk blocked on a named pipe"
        assert found == [str(tmp_path / "photo.png")]
    finally:  # unblock a reader stuck in open(), if any
        for pipe in ("pipe", "pipe.jpg"):
            try:
                os.close(os.open(tmp_path / pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


NON_UTF8_GOOD = os.fsdecode(b"\xff\xfe.jpg")
NON_UTF8_BAD = os.fsdecode(b"caf\xe9.png")


@pytest.fixture
def non_utf8_folder(tmp_path) -> Path:
    try:
        write_image(tmp_path / NON_UTF8_GOOD, format="JPEG")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses non-UTF-8 names")
    (tmp_path / NON_UTF8_BAD).write_text("not a picture")
    return tmp_path


def _shown_text(fmt: str, stdout: str) -> str:
    """What the output says, decoded from its format (JSON escapes a backslash, a table folds long cells)."""
    if fmt == "--json":
        return "\n".join(r["path"] for r in json.loads(stdout)["results"])
    if fmt == "--jsonl":
        return "\n".join(json.loads(line)["path"] for line in stdout.splitlines())
    if fmt == "--csv":
        return "\n".join(row["path"] for row in csv.DictReader(io.StringIO(stdout)))
    return "".join(line.split("│")[1].strip() for line in stdout.splitlines() if line.startswith("│"))


@pytest.mark.parametrize("fmt", ["--json", "--jsonl", "--csv", "--format=table"])
def test_non_utf8_file_names_are_shown_with_escapes(tiny_checkpoint, non_utf8_folder, fmt):
    result = run_cli("scan", "-w", tiny_checkpoint, fmt, *SCAN_OPTIONS, non_utf8_folder)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    shown = _shown_text(fmt, result.stdout)
    assert "\\xff\\xfe.jpg" in shown and "caf\\xe9.png" in shown


# --- a file without read permission (root reads everything, so the scan runs as nobody) ---

NOBODY = 65534


def _scan_paths(detector, folder: str) -> list[dict]:
    return [p.to_dict() for p in detector.predict(iter_inputs([folder]))]


def _scan_as_nobody(detector, folder: str) -> list[dict]:
    """Run the scan in a forked child that dropped to user nobody; its results come back as JSON."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            import torch

            torch.set_num_threads(1)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(writer, json.dumps(_scan_paths(detector, folder)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    chunks = []
    try:
        while select.select([reader], [], [], 120)[0]:
            chunk = os.read(reader, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(reader)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the scan as nobody failed or timed out"
    return json.loads(b"".join(chunks))


def test_file_without_read_permission(tiny_detector):
    folder = tempfile.mkdtemp(prefix="aidetect-perm-")
    try:
        os.chmod(folder, 0o755)  # nobody may enter /tmp/aidetect-perm-*
        good = write_image(Path(folder) / "good.png")
        secret = write_image(Path(folder) / "secret.png", seed=1)
        locked = Path(folder) / "locked"
        locked.mkdir()
        write_image(locked / "inside.png")
        os.chmod(good, 0o644)
        os.chmod(secret, 0)
        os.chmod(locked, 0)
        if os.geteuid() == 0:
            results = _scan_as_nobody(tiny_detector, folder)
        elif os.access(secret, os.R_OK):
            pytest.skip("chmod 000 does not stop this user reading")
        else:
            results = _scan_paths(tiny_detector, folder)
    finally:
        os.chmod(locked, 0o755)
        shutil.rmtree(folder)
    by_path = {r["path"]: r for r in results}
    _assert_one_line_error(by_path[str(secret)], "permission denied")
    _assert_one_line_error(by_path[str(locked)], "cannot list folder")
    _assert_scanned(by_path[str(good)], 64, 48)
    assert str(locked / "inside.png") not in by_path
