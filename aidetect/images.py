"""Decoding any image file a user may hold into RGB pixels, safely.

EXIF orientation is applied (boxes are reported in the frame the user sees), every mode is
converted to 8-bit RGB (alpha composited on white, 16-bit scaled down, first frame of animations),
and a pixel limit read from the header guards against decompression bombs. Every failure is an
`ImageError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps

from .config import DEFAULT_MAX_PIXELS

# Magic numbers of the formats Pillow decodes, to find images by content rather than by name.
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\xff\xd8\xff"), (0, b"\x89PNG\r\n\x1a\n"), (0, b"GIF87a"), (0, b"GIF89a"), (0, b"BM"),
    (0, b"II*\x00"), (0, b"MM\x00*"), (8, b"WEBP"), (0, b"\x00\x00\x00\x0cjP  "), (4, b"ftypavif"),
    (4, b"ftypheic"), (0, b"P6"), (0, b"P5"),
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                            ".jp2", ".avif", ".heic", ".ppm", ".pgm"})


class ImageError(Exception):
    """An input that could not be turned into pixels; str() is a one-line reason."""


def looks_like_image(path: str | os.PathLike) -> bool:
    """True when the file starts with a known image signature (cheap: reads 16 bytes)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return any(head[offset:offset + len(magic)] == magic for offset, magic in _SIGNATURES)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        gray = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("P", "1", "L", "RGB") and image.info.get("transparency") is not None:
        image = image.convert("RGBA")  # a palette or colour-key transparency: composite it too
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def check_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a size read from the header before any pixel is allocated."""
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} = {width * height:,} pixels "
                         f"(limit {max_pixels:,}; raise it with --max-pixels)")
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})")


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _our_pixel_limit() -> Iterator[None]:
    """Replace Pillow's bomb check by ours for one decode: `check_size` refuses by the header, with
    our message, and --max-pixels may go above Pillow's fixed ceiling. Pillow's limit is a global,
    hence the lock (decodes in threads of one process take turns; worker processes do not)."""
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def to_rgb_array(image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An opened PIL image as an H x W x 3 uint8 array in the orientation its EXIF tag asks for."""
    check_size(*image.size, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and palette warnings: the result is what counts
            if getattr(image, "is_animated", False):
                image.seek(0)
            image = ImageOps.exif_transpose(image) or image
            rgb = _to_rgb(image)
            array = np.array(rgb, dtype=np.uint8)  # a writable copy, detached from Pillow
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("out of memory while decoding") from None
    except Exception as exc:
        raise ImageError(f"cannot decode image: {_first_line(exc)}") from None
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"unexpected pixel layout {array.shape}")
    return array


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode the file at `path` to an H x W x 3 uint8 RGB array, or raise ImageError."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ImageError("is a directory")
        if not stat.S_ISREG(info.st_mode):  # a pipe or device could block or never end
            raise ImageError("not a regular file")
        if info.st_size == 0:
            raise ImageError("empty file (0 bytes)")
        with open(path, "rb") as handle:
            with _our_pixel_limit():
                return to_rgb_array(Image.open(handle), max_pixels)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        if looks_like_image(path):  # right signature, unreadable header: say so, not "not an image"
            raise ImageError("corrupt image: its header cannot be parsed") from None
        raise ImageError("not an image (unrecognised format)") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {_first_line(exc)}") from None
    except Exception as exc:  # a format plugin that trips over a malformed header (EOFError, ValueError...)
        raise ImageError(f"corrupt image: {_first_line(exc)}") from None
