"""Provenance: what a file says about its own origin (C2PA, XMP, PNG text, EXIF), read offline.

    from aidetect.provenance import read_provenance, decide, provenance_summary
    provenance = read_provenance("image.png")
    verdict = decide(provenance, probability=0.42, threshold=0.5)

Imports nothing heavy: Pillow loads only for files with EXIF and c2pa only for files with a C2PA
manifest, so scanning files without metadata costs next to nothing.
"""

from __future__ import annotations

from .evidence import C2PA_STATES, C2paAction, C2paFailures, C2paManifest, Provenance, ToolDeclaration
from .reader import read_provenance
from .summary import provenance_summary
from .verdict import Verdict, decide

__all__ = [
    "C2PA_STATES", "C2paAction", "C2paFailures", "C2paManifest", "Provenance", "ToolDeclaration",
    "Verdict", "decide", "provenance_summary", "read_provenance",
]
