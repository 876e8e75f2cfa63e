"""read_provenance: gather a file's provenance evidence, offline, without ever raising.

The file is memory-mapped and only its metadata blocks are touched, so a file without metadata
costs a header walk; Pillow is loaded only for EXIF and c2pa only for a real C2PA box.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from . import containers, pngtext, recognisers
from .evidence import Provenance
from .exif import read_exif
from .manifest import read_c2pa
from .xmp import parse_xmp

UNREADABLE = "file unreadable"  # the note of a file that could not be opened at all
_MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_XMP_KEY = "XML:com.adobe.xmp"  # the PNG text keyword that carries an XMP packet


def read_provenance(path: str | os.PathLike) -> Provenance:
    """Everything `path` says about its own origin; problems become `notes`, never exceptions."""
    provenance = Provenance(path=os.fspath(path))
    try:
        with open(path, "rb") as file, _mapped(file) as data:
            blocks = containers.scan(data)
            provenance.notes += blocks.notes
            _read_blocks(blocks, provenance)
            if blocks.has_c2pa:
                file.seek(0)
                _read_c2pa(file, _MIME.get(blocks.format), provenance)
    except OSError as err:
        provenance.notes.append(f"{UNREADABLE}: {err.strerror or err}")
    except Exception as err:  # a parser bug must not stop a scan of many files; say what broke
        provenance.notes.append(f"provenance reading failed: {type(err).__name__}: {err}")
    _remote_reference(provenance)
    provenance.tools, provenance.unrecognised_keys = recognisers.recognise(provenance)
    return provenance


@contextmanager
def _mapped(file: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes, mapped rather than read where the OS allows (pixel data is never paged in)."""
    try:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):  # empty files and pipes cannot be mapped
        mapped = None
    if mapped is None:
        yield file.read(containers.SEARCH_LIMIT)
    else:
        with mapped:
            yield mapped


def _read_blocks(blocks: containers.Blocks, provenance: Provenance) -> None:
    notes = provenance.notes
    packets = list(blocks.xmp)
    for chunk in blocks.text_chunks:
        decoded = pngtext.decode(chunk, notes)
        if decoded is None:
            continue
        key, text = decoded
        if key == _XMP_KEY:
            packets.append(text.encode("utf-8"))
        elif key in provenance.png_text:
            notes.append(f"PNG text key '{key}' repeated: the first kept")
        else:
            provenance.png_text[key] = text
    for packet in packets:
        for key, value in parse_xmp(packet, notes).items():
            provenance.xmp.setdefault(key, value)
    if blocks.exif is not None:
        provenance.exif = read_exif(blocks.exif, notes)


def _read_c2pa(file: IO[bytes], mime: str | None, provenance: Provenance) -> None:
    result = read_c2pa(file, mime)
    provenance.c2pa_state = result.state
    provenance.c2pa = result.manifests
    provenance.c2pa_failures = result.failures
    provenance.remote_manifest_url = result.remote_url
    provenance.trust_list = result.trust_list
    provenance.notes += result.notes


def _remote_reference(provenance: Provenance) -> None:
    """XMP dcterms:provenance points at the manifest: on a server, or stripped from this file."""
    reference = provenance.xmp.get("dcterms:provenance")
    if provenance.c2pa_state != "none" or not isinstance(reference, str):
        return
    if reference.lower().startswith(("http://", "https://")):
        provenance.c2pa_state, provenance.remote_manifest_url = "remote", reference
        provenance.notes.append(f"C2PA manifest is stored remotely at {reference}: not fetched")
    elif reference.startswith("self#jumbf="):
        provenance.notes.append("XMP points at an embedded C2PA manifest that is not in the file: it was stripped")
