"""Test helpers: where the shared data lives, small and malformed image files, and running the CLI in-process."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(os.environ.get("AIDETECT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SCAN_OPTIONS = ("--device", "cpu", "--workers", "0", "--no-progress")


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test with the reason when this checkout has none beside it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found (set AIDETECT_SHARED to the shared folder)")
    return path


def noise_pixels(width: int, height: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def photo_pixels(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """Smooth, photo-like pixels: colour gradients plus mild noise. Pure noise would not survive resizing
    as the same picture, and no autoencoder could reconstruct it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [np.sin(rng.uniform(3, 9) * x + rng.uniform(3, 9) * y * rng.choice([-1, 1]) + rng.uniform(0, 6))
                for _ in range(3)]
    return np.clip(np.stack(channels, -1) * 100 + 128 + rng.normal(0, 3, (height, width, 3)), 0, 255).astype(np.uint8)


def write_image(path: Path, width: int = 64, height: int = 48, seed: int = 0, **save_options) -> Path:
    """A noise RGB image, format from the suffix (or `format=`)."""
    Image.fromarray(noise_pixels(width, height, seed)).save(path, **save_options)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid PNG that declares width x height RGB pixels in 100 bytes (its data is far too short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    return path


def corrupt_png_chunk(path: Path) -> Path:
    """A PNG whose IHDR bytes were flipped after its CRC was written, so the CRC check fails."""
    buffer = io.BytesIO()
    Image.fromarray(noise_pixels(32, 32)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[data.index(b"IHDR") + 12] ^= 0xFF  # the bit-depth byte
    path.write_bytes(bytes(data))
    return path


def truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(noise_pixels(200, 150)).save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def exif_rotated_jpeg(path: Path, orientation: int, width: int = 300, height: int = 150) -> Path:
    """Stored width x height with a red top row; shown rotated by its EXIF orientation tag."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)
    return path


def run_cli(*args: str):
    """`aidetect ARGS` in-process; stdout and stderr kept apart."""
    from typer.testing import CliRunner

    from aidetect.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def scan_json(checkpoint: Path, *args: str) -> tuple[int, dict, str]:
    """`aidetect scan --json` on the CPU in-process: exit code, parsed document, stderr."""
    result = run_cli("scan", "-w", checkpoint, "--json", *SCAN_OPTIONS, *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr
