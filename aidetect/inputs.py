"""Turning the paths a user types into a deterministic stream of files to scan.

Files are taken as given; folders are walked (recursively by default, following links but never
twice into the same folder, so symlink loops end); glob patterns are expanded. In folders, images
are recognised by content as well as by extension. Problems (a path that does not exist, a folder
that cannot be listed) become items with an error, so they are reported and the run goes on.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from .images import IMAGE_SUFFIXES, looks_like_image


@dataclass(frozen=True)
class InputItem:
    path: str
    error: str | None = None


def display_path(path: str | os.PathLike) -> str:
    """A printable form of any path: undecodable bytes of non-UTF-8 names appear as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_candidate(path: str) -> bool:
    """Named like an image or starting like one. Pipes and devices are skipped (reading one could
    block for ever); a dangling link or an unreadable entry named like an image is kept, so it is reported."""
    named_like_image = os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return named_like_image
    return stat.S_ISREG(mode) and (named_like_image or looks_like_image(path))


def _walk(root: str, recursive: bool) -> Iterator[InputItem]:
    seen: set[tuple[int, int]] = set()
    errors: list[InputItem] = []

    def on_error(exc: OSError) -> None:
        errors.append(InputItem(exc.filename or root, f"cannot list folder: {exc.strerror or exc}"))

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=on_error):
        yield from errors
        errors.clear()
        try:
            stat = os.stat(folder)
        except OSError as exc:
            yield InputItem(folder, f"cannot list folder: {exc.strerror or exc}")
            dirs[:] = []
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen:  # a symlink loop or a second link to a folder already scanned
            dirs[:] = []
            continue
        seen.add(key)
        dirs.sort()
        if not recursive:
            dirs[:] = []
        for name in sorted(files):
            path = os.path.join(folder, name)
            if _is_candidate(path):
                yield InputItem(path)
    yield from errors


def iter_inputs(paths: Iterable[str], recursive: bool = True) -> Iterator[InputItem]:
    """Expand files, folders and glob patterns, in the order given (folders sorted by name)."""
    for raw in paths:
        path = os.fsdecode(raw)  # bytes paths too, as str with surrogate escapes like os.walk's names
        if os.path.isdir(path):
            yield from _walk(path, recursive)
        elif os.path.lexists(path):
            yield InputItem(path)
        elif glob.has_magic(path):
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                yield InputItem(path, "no file matches this pattern")
            for match in matches:
                yield from iter_inputs([match], recursive) if os.path.isdir(match) else [InputItem(match)]
        else:
            yield InputItem(path, "no such file or directory")
