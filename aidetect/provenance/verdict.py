"""decide: one label from provenance and the pixel detector, by precedence, never by averaging.

1. An intact signed C2PA declaration of AI generation or AI editing decides (basis
   'signed-declaration'): strong when the signer is on the bundled trust list, moderate when the
   credential is untrusted, expired or revoked.
2. A signed manifest that fails an integrity check was altered after signing: its declaration is
   void and the pixel detector decides (basis 'tampered-manifest').
3. Unsigned AI metadata (XMP, PNG text, EXIF) decides, weakly: anyone can write it
   (basis 'unsigned-metadata').
4. Otherwise the pixel detector decides (basis 'pixels'), rated weak: it is a statistical estimate.

A label is one of 'generated', 'ai-edited', 'no sign of generation' or 'undetermined' (no
provenance and no pixel result). No label ever claims a file is genuine.
"""

from __future__ import annotations

from ..results import AI_EDITED, GENERATED, NO_SIGN, UNCERTAIN, UNDETERMINED, Verdict
from .declarations import AI_KINDS, Declaration, declaration
from .evidence import SIGNED_STATES, Provenance, ToolDeclaration

DEFAULT_THRESHOLD = 0.5
NO_PROVENANCE = "absence of provenance is no evidence of authenticity"
_WHAT = {GENERATED: "AI generation", AI_EDITED: "AI editing"}


def decide(provenance: Provenance | None, probability: float | None, threshold: float | None,
           lower_threshold: float | None = None) -> Verdict:
    """The verdict for one file; `probability` is None when the pixel detector was off or failed, `provenance`
    None when it was not read (`--no-provenance`)."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    pixels = _Pixels(probability, threshold, threshold if lower_threshold is None else min(lower_threshold, threshold))
    if provenance is None:
        return Verdict(pixels.label, "pixels", pixels.strength, f"Provenance was not read; {pixels.clause}.")
    if provenance.c2pa_state == "tampered":
        codes = ", ".join(provenance.c2pa_failures.tampering)
        return Verdict(pixels.label, "tampered-manifest", pixels.strength,
                       f"A signed C2PA manifest was altered after signing ({codes}), so its declaration is void; "
                       f"{pixels.clause}.")
    declared = declaration(provenance.c2pa) if provenance.c2pa_state in SIGNED_STATES else None
    if declared and declared.kind in AI_KINDS:
        return _signed(declared, provenance, pixels)
    unsigned = [tool for tool in provenance.tools if tool.basis == "unsigned"]
    if unsigned:
        return _unsigned(unsigned, pixels)
    context = _context(provenance, declared)
    disagreement = None
    if declared and pixels.label == GENERATED:
        disagreement = (f"A signed manifest declares a camera capture ({declared.source_type}), "
                        f"yet the pixel detector says generated ({pixels.comparison}).")
    if context:
        sentence = f"{context}; {pixels.clause}."
    else:
        sentence = f"No metadata declares how this file was made; {pixels.clause}; {NO_PROVENANCE}."
    return Verdict(pixels.label, "pixels", pixels.strength, sentence, disagreement)


class _Pixels:
    """The pixel detector's result, as a label and as words."""

    def __init__(self, probability: float | None, threshold: float, lower: float) -> None:
        self.probability, self.threshold = probability, threshold
        if probability is None:
            self.label, self.strength = UNDETERMINED, "none"
            self.clause, self.comparison = "no pixel result is available", ""
        else:
            generated, clear = probability >= threshold, probability < lower
            self.label = GENERATED if generated else NO_SIGN if clear else UNCERTAIN
            self.strength = "weak"
            cuts = f"threshold {threshold:.3f}" if lower == threshold else f"uncertain from {lower:.3f} to {threshold:.3f}"
            self.clause = f"the pixel detector scores {probability:.3f} ({cuts})"
            self.comparison = (f"{probability:.3f} >= {threshold:.3f}" if generated else
                               f"{probability:.3f} < {lower:.3f}" if clear else f"{lower:.3f} <= {probability:.3f} < {threshold:.3f}")


def _signed(declared: Declaration, provenance: Provenance, pixels: _Pixels) -> Verdict:
    manifest = declared.manifest
    signer = ", ".join(part for part in (manifest.signer, manifest.issuer) if part) or "unnamed signer"
    source = ", ".join(part for part in (declared.source_type, declared.agent) if part)
    if provenance.c2pa_state == "trusted":
        strength, trust = "strong", f"is on the trust list ({provenance.trust_list})"
    else:
        problems = ", ".join(provenance.c2pa_failures.credential) or "not on the trust list"
        strength = "moderate"
        trust = f"is not trusted ({problems}; trust list: {provenance.trust_list}), which weakens it"
    sentence = f"A signed C2PA manifest declares {_WHAT[declared.kind]} ({source}); the signer ({signer}) {trust}."
    return Verdict(declared.kind, "signed-declaration", strength, sentence, _against(declared.kind, pixels))


def _unsigned(tools: list[ToolDeclaration], pixels: _Pixels) -> Verdict:
    kind = GENERATED if any(tool.declares == GENERATED for tool in tools) else AI_EDITED
    places: dict[str, list[str]] = {}
    for tool in tools:
        places.setdefault(tool.tool, []).append(tool.found_in)
    named = "; ".join(f"{name} ({', '.join(found_in)})" for name, found_in in places.items())
    sentence = f"Unsigned metadata declares {_WHAT[kind]}: {named}. Such metadata is easily forged or stripped."
    return Verdict(kind, "unsigned-metadata", "weak", sentence, _against(kind, pixels))


def _against(kind: str, pixels: _Pixels) -> str | None:
    if pixels.label != NO_SIGN:
        return None
    return f"Provenance declares {_WHAT[kind]}, yet the pixel detector finds no sign of it ({pixels.comparison})."


def _context(provenance: Provenance, declared: Declaration | None) -> str | None:
    """What provenance there is when it declares nothing about AI, for the pixel verdict's sentence."""
    state = provenance.c2pa_state
    if declared:
        return f"A signed C2PA manifest declares a camera capture ({declared.source_type})"
    if state in SIGNED_STATES:
        return "A signed C2PA manifest makes no declaration about AI"
    if state == "remote":
        return f"The C2PA manifest is stored remotely ({provenance.remote_manifest_url}) and was not fetched"
    if state == "invalid":
        return "C2PA data is present but unreadable"
    if state == "unverified":
        return "C2PA data is present but was not verified (c2pa-python is not available)"
    return None
