"""JSON-lines result files that survive a kill: read back what is done, put results in input order.

A scan that may be resumed appends one flushed line per image. A kill can tear at most the last
line, so reading a file back keeps every complete record and cuts the torn tail off the file,
and the scan appends from there. Each record carries its input's `path`, which is how a restarted
scan knows what to skip and how files written in pieces are put back in input order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from .atomic import atomic_open


class ResultsError(Exception):
    """Result files that cannot be assembled into one complete, ordered file."""


class _Misaligned(Exception):
    pass


def _records(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """(end offset, input path, raw line) of each complete record; a last line without its newline is
    torn and left out. Any other line that is not a record means the file is not ours: ResultsError,
    rather than cutting a file that some other program wrote."""
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.endswith(b"\n"):
                return
            try:
                name = json.loads(raw)["path"]
                if not isinstance(name, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise ResultsError(f"{path}: line {number} is not a scan result; not resuming into this file") from None
            offset += len(raw)
            yield offset, name, raw


def repair(path: Path) -> list[str]:
    """Input paths of the complete records in `path`, in file order ([] if there is no file); a line
    torn by a kill after them is cut off so that appending continues on a clean line."""
    if not path.exists():
        return []
    names, end = [], 0
    for end, name, _ in _records(path):
        names.append(name)
    if end < path.stat().st_size:
        os.truncate(path, end)
    return names


def done_paths(path: Path) -> set[str]:
    """Input paths with a complete record in `path`, read only (the file may belong to another process)."""
    return {name for _, name, _ in _records(path)} if path.exists() else set()


def in_order(path: Path, expected: list[str]) -> bool:
    """True when `path` holds exactly one record per expected input, in that order."""
    records, end = _records(path), 0
    for name in expected:
        record = next(records, None)
        if record is None or record[1] != name:
            return False
        end = record[0]
    return end == path.stat().st_size  # nothing after the last expected record


def interleave(output: Path, parts: list[Path], expected: list[str]) -> bool:
    """Write `output` from parts where part r holds inputs r, r + W, r + 2W... in order (W = len(parts)),
    streaming, in constant memory. False, and `output` untouched, when the parts are not laid out so."""
    streams = [_records(part) for part in parts]
    try:
        with atomic_open(output, "wb") as handle:
            for k, name in enumerate(expected):
                record = next(streams[k % len(parts)], None)
                if record is None or record[1] != name:
                    raise _Misaligned
                handle.write(record[2])
            if any(next(stream, None) is not None for stream in streams):
                raise _Misaligned
    except _Misaligned:
        return False
    return True


def merge_by_path(output: Path, sources: list[Path], expected: list[str]) -> None:
    """Write `output` with one record per expected input, in order, taken from any of `sources` by path
    (an input listed twice gets the same record twice). Holds the records in memory: the fallback when
    results are not laid out for `interleave` (the inputs changed, or the number of processes did)."""
    lines: dict[str, bytes] = {}
    for source in sources:
        if source.exists():
            for _, name, raw in _records(source):
                lines.setdefault(name, raw)
    missing = [name for name in expected if name not in lines]
    if missing:
        raise ResultsError(f"{len(missing)} inputs have no result (first: {missing[0]})")
    with atomic_open(output, "wb") as handle:
        for name in expected:
            handle.write(lines[name])
