"""The IPTC digital source type vocabulary, which both C2PA and XMP use to say how media was made.

Writers disagree on the URI's scheme (http or https) and some write the bare term, so values are
matched by their final term and only under the vocabularies' own prefixes.
"""

from __future__ import annotations

from ..results import AI_EDITED, GENERATED

_VOCABULARIES = ("cv.iptc.org/newscodes/digitalsourcetype/", "c2pa.org/digitalsourcetype/")

GENERATIVE_TERMS = frozenset({"trainedAlgorithmicMedia", "algorithmicMedia", "compositeSynthetic"})
EDITING_TERMS = frozenset({"compositeWithTrainedAlgorithmicMedia"})
CAPTURE_TERMS = frozenset({"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm"})
_KNOWN = GENERATIVE_TERMS | EDITING_TERMS | CAPTURE_TERMS


def short_term(value: str | None) -> str | None:
    """The vocabulary term of a digital source type URI (or of a bare known term), else None."""
    if not value:
        return None
    text = value.strip()
    if text in _KNOWN:
        return text
    lowered = text.lower()
    for scheme in ("http://", "https://"):
        for vocabulary in _VOCABULARIES:
            prefix = scheme + vocabulary
            if lowered.startswith(prefix):
                term = text[len(prefix):].strip("/")
                return term or None
    return None


def classify(term: str | None) -> str | None:
    """'generated', 'ai-edited' or 'capture' for a short term; None for the rest of the vocabulary."""
    if term in GENERATIVE_TERMS:
        return GENERATED
    if term in EDITING_TERMS:
        return AI_EDITED
    if term in CAPTURE_TERMS:
        return "capture"
    return None
