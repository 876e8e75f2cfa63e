"""`aidetect provenance FILE...`: everything a file declares about its origin, and what that proves alone."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import List

import typer

from .common import finish, note, out


def provenance(
    files: List[Path] = typer.Argument(..., help="Image files."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document: each file's evidence and verdict."),
) -> None:
    """Print the full provenance evidence of each file (Content Credentials, XMP, PNG text, EXIF), read
    offline, and the verdict it supports without the pixels. Absence of provenance proves nothing."""
    from ..inputs import display_path
    from ..provenance import decide, read_provenance
    from ..provenance.reader import UNREADABLE
    from ..render.provenance import provenance_table

    found = [dataclasses.replace(read_provenance(path), path=display_path(path)) for path in files]
    verdicts = [decide(evidence, None, None) for evidence in found]
    unreadable = [p for p in found if any(n.startswith(UNREADABLE) for n in p.notes)]
    if as_json:
        doc = [{"provenance": p.to_dict(), "verdict": v.to_dict()} for p, v in zip(found, verdicts)]
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        for evidence, verdict in zip(found, verdicts):
            out.print(provenance_table(evidence, verdict))
    for p in unreadable:
        note(f"error: {p.path}: {p.notes[0]}")
    finish(unreadable)
