"""provenance_summary: a few words of provenance for one table cell."""

from __future__ import annotations

from .declarations import declaration
from .evidence import Provenance

NOTHING = "—"
_STATE_WORDS = {
    "tampered": "C2PA tampered: altered after signing",
    "remote": "C2PA remote manifest (not fetched)",
    "invalid": "C2PA unreadable",
    "unverified": "C2PA present (not verified)",
}
_SOURCES = {"png": "PNG", "exif": "EXIF", "xmp": "XMP"}


def provenance_summary(provenance: Provenance | None) -> str:
    """E.g. 'C2PA signed: trainedAlgorithmicMedia (OpenAI)', 'PNG parameters: AUTOMATIC1111 (unsigned)'."""
    if provenance is None:
        return NOTHING
    parts = [_c2pa_part(provenance)] if provenance.c2pa_state != "none" else []
    unsigned = next((tool for tool in provenance.tools if tool.basis == "unsigned"), None)
    if unsigned:
        source, _, field = unsigned.found_in.partition(":")
        parts.append(f"{_SOURCES.get(source, source)} {field.rpartition(':')[2]}: {unsigned.tool} (unsigned)")
    return "; ".join(parts) or NOTHING


def _c2pa_part(provenance: Provenance) -> str:
    if provenance.c2pa_state in _STATE_WORDS:
        return _STATE_WORDS[provenance.c2pa_state]
    signed = "C2PA signed" if provenance.c2pa_state == "trusted" else "C2PA signed (untrusted)"
    declared = declaration(provenance.c2pa)
    manifest = declared.manifest if declared else next((m for m in provenance.c2pa if m.active), None)
    what = (declared.source_type or declared.kind) if declared else "no AI declaration"
    who = (manifest.issuer or manifest.signer) if manifest else None
    return f"{signed}: {what} ({who})" if who else f"{signed}: {what}"
