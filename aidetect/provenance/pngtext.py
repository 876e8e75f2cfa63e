"""Decode PNG text chunks (tEXt, zTXt, iTXt) with every size bounded.

Generators write their settings here, sometimes megabytes of workflow JSON, and a crafted file can
hold a compression bomb, so inflating stops at `MAX_TEXT` and binary payloads are not echoed back.
"""

from __future__ import annotations

import re
import zlib

from .containers import MAX_TEXT_CHUNK, TextChunk

MAX_TEXT = 1 << 20  # characters kept of one chunk's text, after inflating
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def decode(chunk: TextChunk, notes: list[str]) -> tuple[str, str] | None:
    """(keyword, text) of one chunk; None, with a note, when the chunk is malformed."""
    keyword, sep, body = chunk.payload.partition(b"\x00")
    if not sep or not 1 <= len(keyword) <= 79:
        notes.append(f"PNG {chunk.kind} chunk without a valid keyword: skipped")
        return None
    key = keyword.decode("latin-1")
    if chunk.size > MAX_TEXT_CHUNK:
        notes.append(f"PNG {chunk.kind} '{key}' is {chunk.size} bytes: only the first {MAX_TEXT_CHUNK} read")
    if chunk.kind == "tEXt":
        text = body.decode("latin-1")
    elif chunk.kind == "zTXt":
        raw = _inflate(body[1:], key, notes) if body[:1] == b"\x00" else None
        text = None if raw is None else raw.decode("latin-1")
    else:
        text = _itxt(body, key, notes)
    if text is None:
        notes.append(f"PNG {chunk.kind} '{key}' is malformed: skipped")
        return None
    return key, _printable(text[:MAX_TEXT], key, notes)


def _itxt(body: bytes, key: str, notes: list[str]) -> str | None:
    """iTXt: compression flag and method, language tag, translated keyword, then UTF-8 text."""
    if len(body) < 2 or body[1] != 0:
        return None
    compressed = body[0] == 1
    parts = body[2:].split(b"\x00", 2)
    if len(parts) != 3:
        return None
    raw = _inflate(parts[2], key, notes) if compressed else parts[2]
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"PNG iTXt '{key}' is not valid UTF-8: undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def _inflate(data: bytes, key: str, notes: list[str]) -> bytes | None:
    """At most `MAX_TEXT` inflated bytes; None when the stream is corrupt."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        notes.append(f"PNG text '{key}' inflates to over {MAX_TEXT} bytes: truncated")
    elif not inflater.eof:
        notes.append(f"PNG text '{key}' compressed stream is cut short")
    return out


def _printable(text: str, key: str, notes: list[str]) -> str:
    """The text, or a placeholder when it holds control bytes (binary data, not text)."""
    if _CONTROL.search(text):
        notes.append(f"PNG text '{key}' holds binary data: not kept")
        return f"<binary data, {len(text)} characters>"
    return text
