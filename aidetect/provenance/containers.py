"""Find the metadata blocks of a JPEG, PNG or WebP file without decoding any pixels.

This walk is the cheap pre-check that keeps provenance reading near free on files without metadata:
it only follows segment and chunk headers, so c2pa is loaded only when a C2PA JUMBF box is really
there. Other containers get a bounded byte search for a C2PA box and an XMP packet.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_TEXT_CHUNK = 1 << 20  # bytes of one PNG text chunk kept for decoding
MAX_TEXT_CHUNKS = 256
MAX_METADATA_BLOCK = 4 << 20  # bytes of one EXIF or XMP block
SEARCH_LIMIT = 64 << 20  # bytes searched in containers that are not walked

_XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
_EXTENDED_XMP_SIGNATURE = b"http://ns.adobe.com/xmp/extension/\x00"
_EXIF_SIGNATURE = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
# A C2PA manifest store: a 'jumb' superbox whose first child, a 'jumd' description box, carries
# the C2PA UUID, whose first four bytes spell 'c2pa'.
_C2PA_BOX = re.compile(rb"jumb.{4}jumdc2pa", re.DOTALL)


@dataclass
class TextChunk:
    """A PNG text chunk's raw payload, cut to `MAX_TEXT_CHUNK`; `size` is the chunk's real length."""

    kind: str  # "tEXt", "zTXt" or "iTXt"
    payload: bytes
    size: int


@dataclass
class Blocks:
    """The metadata blocks of one file, still encoded."""

    format: str  # "jpeg", "png", "webp", "other" or "empty"
    has_c2pa: bool = False
    xmp: list[bytes] = field(default_factory=list)
    exif: bytes | None = None  # a TIFF structure, possibly behind an "Exif\0\0" header
    text_chunks: list[TextChunk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_c2pa_box(box: bytes) -> bool:
    """Whether `box` starts with a C2PA manifest store JUMBF box."""
    return _C2PA_BOX.match(box, 4) is not None


def scan(data: bytes) -> Blocks:
    """The metadata blocks of `data` (bytes or an mmap of the file)."""
    if len(data) == 0:
        return Blocks("empty", notes=["empty file"])
    if data[:2] == b"\xff\xd8":
        return _scan_jpeg(data)
    if data[:8] == _PNG_SIGNATURE:
        return _scan_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _scan_webp(data)
    return _scan_other(data)


def _note_once(blocks: Blocks, note: str) -> None:
    if note not in blocks.notes:
        blocks.notes.append(note)


def _bounded(block: bytes, what: str, blocks: Blocks) -> bytes | None:
    if len(block) > MAX_METADATA_BLOCK:
        blocks.notes.append(f"{what} block of {len(block)} bytes is over {MAX_METADATA_BLOCK} bytes: skipped")
        return None
    return block


def _scan_jpeg(data: bytes) -> Blocks:
    blocks = Blocks("jpeg")
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            blocks.notes.append(f"JPEG: no marker at byte {pos}: segments after it not read")
            return blocks
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: metadata comes before both
            return blocks
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4:pos + 2 + length]
        if marker == 0xEB and payload[:2] == b"JP" and is_c2pa_box(payload[8:]):
            blocks.has_c2pa = True  # even when cut short, so that c2pa reports the damage
        if length < 2 or pos + 2 + length > end:
            blocks.notes.append(f"JPEG: segment 0x{marker:02X} at byte {pos} runs past the end: file truncated")
            return blocks
        if marker == 0xE1:
            _jpeg_app1(payload, blocks)
        pos += 2 + length
    blocks.notes.append("JPEG: file ends before the image data: truncated")
    return blocks


def _jpeg_app1(payload: bytes, blocks: Blocks) -> None:
    if payload.startswith(_EXIF_SIGNATURE) and blocks.exif is None:
        blocks.exif = payload
    elif payload.startswith(_XMP_SIGNATURE):
        blocks.xmp.append(payload[len(_XMP_SIGNATURE):])
    elif payload.startswith(_EXTENDED_XMP_SIGNATURE):
        _note_once(blocks, "JPEG: extended XMP segments not read")


def _chunks(data: bytes, pos: int, header: str, blocks: Blocks, name: str) -> Iterator[tuple[bytes, int, int]]:
    """(kind, start, length) of each chunk of a PNG (`header` '>I4s': length, kind, then a CRC) or WebP
    ('<4sI': kind, length, then padding to an even size) file. A chunk that runs past the end is yielded
    (a cut-off C2PA chunk must still reach c2pa, which reports the damage), noted, and ends the walk."""
    end, png = len(data), header.startswith(">")
    while pos + 8 <= end:
        first, second = struct.unpack_from(header, data, pos)
        (length, kind), start = (first, second) if png else (second, first), pos + 8
        if start + length > end:
            yield kind, start, end - start
            blocks.notes.append(f"{name}: chunk {kind!r} at byte {pos} runs past the end: file truncated")
            return
        yield kind, start, length
        pos = start + length + (4 if png else length & 1)


def _scan_png(data: bytes) -> Blocks:
    blocks = Blocks("png")
    for kind, start, length in _chunks(data, 8, ">I4s", blocks, "PNG"):
        if kind == b"caBX":
            blocks.has_c2pa = blocks.has_c2pa or is_c2pa_box(data[start:start + 64])
        elif kind in _PNG_TEXT_TYPES and len(blocks.text_chunks) < MAX_TEXT_CHUNKS:
            payload = data[start:start + min(length, MAX_TEXT_CHUNK)]
            blocks.text_chunks.append(TextChunk(kind.decode(), payload, length))
        elif kind in _PNG_TEXT_TYPES:
            _note_once(blocks, f"PNG: more than {MAX_TEXT_CHUNKS} text chunks: the rest not read")
        elif kind == b"eXIf" and blocks.exif is None:
            blocks.exif = _bounded(data[start:start + length], "PNG eXIf", blocks)
        elif kind == b"IEND":
            return blocks
    if not any("runs past the end" in note for note in blocks.notes):
        blocks.notes.append("PNG: no IEND chunk: file truncated")
    return blocks


def _scan_webp(data: bytes) -> Blocks:
    blocks = Blocks("webp")
    for kind, start, length in _chunks(data, 12, "<4sI", blocks, "WebP"):
        if kind == b"C2PA":
            blocks.has_c2pa = blocks.has_c2pa or is_c2pa_box(data[start:start + 64])
        elif kind == b"EXIF" and blocks.exif is None:
            blocks.exif = _bounded(data[start:start + length], "WebP EXIF", blocks)
        elif kind == b"XMP " and (xmp := _bounded(data[start:start + length], "WebP XMP", blocks)):
            blocks.xmp.append(xmp)
    return blocks


def _scan_other(data: bytes) -> Blocks:
    blocks = Blocks("other", notes=["not a JPEG, PNG or WebP file: only searched for C2PA and XMP"])
    limit = min(len(data), SEARCH_LIMIT)
    if len(data) > SEARCH_LIMIT:
        blocks.notes.append(f"only the first {SEARCH_LIMIT} bytes were searched")
    blocks.has_c2pa = _C2PA_BOX.search(data, 0, limit) is not None
    begin = data.find(b"<x:xmpmeta", 0, limit)
    if begin >= 0:
        close = data.find(b"</x:xmpmeta>", begin, min(limit, begin + MAX_METADATA_BLOCK))
        if close < 0:
            blocks.notes.append("XMP packet without an end within the size limit: not read")
        else:
            blocks.xmp.append(data[begin:close + len(b"</x:xmpmeta>")])
    return blocks
