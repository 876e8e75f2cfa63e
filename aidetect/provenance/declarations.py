"""What the C2PA manifests declare about how the file was made.

The active manifest speaks for the file. When it declares nothing (ChatGPT's active manifest only
records 'c2pa.opened'), the manifests of what it was made from speak: a parent's declaration
carries over as it is, while an AI-made component only makes the file AI-edited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..results import AI_EDITED, GENERATED
from . import sourcetypes
from .evidence import C2paManifest
from .generators import generator_name

_RANK = {GENERATED: 3, AI_EDITED: 2, "capture": 1}
AI_KINDS = (GENERATED, AI_EDITED)


@dataclass(frozen=True)
class Declaration:
    kind: str  # "generated", "ai-edited" or "capture"
    source_type: str | None  # the digitalSourceType term; None when a generative agent implies it
    agent: str | None  # the software agent of the declaring action, else the claim generator
    manifest: C2paManifest


def declaration(manifests: list[C2paManifest]) -> Declaration | None:
    """The declaration that holds for the file itself, or None."""
    active = next((manifest for manifest in manifests if manifest.active), None)
    own = declared_by(active) if active else None
    if own:
        return own
    inherited = []
    for manifest in manifests:
        found = None if manifest.active else declared_by(manifest)
        if found and manifest.relationship not in (None, "parentOf"):
            found = replace(found, kind=AI_EDITED) if found.kind in AI_KINDS else None
        if found:
            inherited.append(found)
    return max(inherited, key=lambda found: _RANK[found.kind], default=None)


def declared_by(manifest: C2paManifest) -> Declaration | None:
    """The strongest declaration among one manifest's actions."""
    found = []
    for action in manifest.actions:
        kind = sourcetypes.classify(action.source_type)
        if kind == GENERATED and action.action != "c2pa.created":
            kind = AI_EDITED  # a generative source type on an edit: part of the image is AI-made
        if kind is None and action.action == "c2pa.edited" and generator_name(action.software_agent):
            kind = AI_EDITED
        if kind:
            found.append(Declaration(kind, action.source_type, action.software_agent or manifest.claim_generator,
                                     manifest))
    return max(found, key=lambda declared: _RANK[declared.kind], default=None)
