"""The full provenance evidence of one file, for a person (`aidetect provenance FILE`)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..provenance import Provenance, provenance_summary
from ..results import Verdict

MAX_VALUE = 300  # characters of a text value shown; --json has them whole


def _short(value: object) -> str:
    text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + f"... ({len(text):,} characters)"


def provenance_table(provenance: Provenance, verdict: Verdict) -> Table:
    """Every part of the evidence, one row each, and what it proves on its own (no pixels)."""
    table = Table(title=provenance.path, show_header=False, title_justify="left")
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("found", overflow="fold")
    table.add_row("summary", Text(provenance_summary(provenance)))
    table.add_row("provenance alone", Text(f"{verdict.label} ({verdict.basis}, {verdict.strength}): {verdict.sentence}"))
    table.add_row("C2PA", Text(provenance.c2pa_state + (f"; trust list: {provenance.trust_list}" if provenance.trust_list else "")))
    for manifest in provenance.c2pa:
        role = "active manifest" if manifest.active else f"ingredient ({manifest.relationship or 'unknown use'})"
        who = ", ".join(part for part in (manifest.signer, manifest.issuer) if part) or "unnamed signer"
        actions = "; ".join(", ".join(part for part in (a.action, a.source_type, a.software_agent) if part)
                            for a in manifest.actions) or "no actions"
        table.add_row(f"  {role}", Text(f"{manifest.label}: {manifest.claim_generator or '-'}; signed by {who}"
                                        f"{f' at {manifest.signed_at}' if manifest.signed_at else ''}; {actions}"))
    failures = provenance.c2pa_failures
    if failures.tampering:
        table.add_row("  tampering", Text(", ".join(failures.tampering), style="red"))
    if failures.credential:
        table.add_row("  credential", Text(", ".join(failures.credential), style="yellow"))
    if provenance.remote_manifest_url:
        table.add_row("  remote manifest", Text(f"{provenance.remote_manifest_url} (not fetched)"))
    for section, values in (("XMP", provenance.xmp), ("PNG text", provenance.png_text), ("EXIF", provenance.exif)):
        for key, value in values.items():
            table.add_row(f"{section} {key}", Text(_short(value)))
    for tool in provenance.tools:
        table.add_row("declares", Text(f"{tool.declares} by {tool.tool} ({tool.found_in}, {tool.basis})"))
    if provenance.unrecognised_keys:
        table.add_row("unrecognised keys", Text(", ".join(provenance.unrecognised_keys)))
    for note in provenance.notes:
        table.add_row("note", Text(note, style="yellow"))
    return table
