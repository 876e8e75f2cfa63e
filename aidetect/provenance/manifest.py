"""Verify an embedded C2PA manifest store with c2pa-python, offline, and keep what it declares.

c2pa is imported here only, on the first file that really holds a manifest. Its settings turn off
every network use: remote manifests and OCSP are not fetched and the host allow-list is empty.
A failed check is sorted by what it means: a credential problem (untrusted, expired, revoked
signer) weakens the declaration; any other failure (a hash or signature mismatch) voids it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

from . import sourcetypes, trust
from .evidence import C2paAction, C2paFailures, C2paManifest

_CREDENTIAL_CODES = frozenset(
    {"timeStamp.untrusted", "timeStamp.outsideValidity", "claimSignature.outsideValidity", "algorithm.deprecated"}
)
_URL = re.compile(r"https?://[^\s'\"]+")
MAX_ACTIONS = 200  # per manifest


@dataclass
class C2paResult:
    state: str
    manifests: list[C2paManifest] = field(default_factory=list)
    failures: C2paFailures = field(default_factory=C2paFailures)
    remote_url: str | None = None
    trust_list: str | None = None
    notes: list[str] = field(default_factory=list)


def read_c2pa(stream: IO[bytes], mime: str | None) -> C2paResult:
    """Validate the manifest store in `stream` against the bundled trust list."""
    try:
        import c2pa
    except (ImportError, OSError):  # not installed, or its native library does not load here
        return C2paResult("unverified", notes=["c2pa-python is not available: the C2PA manifest was not verified"])
    bundle = trust.bundled()
    try:
        with c2pa.Reader(mime, stream, context=_context()) as reader:
            store = json.loads(reader.json())
    except Exception as err:  # C2paError for bad manifests; the native layer can raise others
        return _unreadable(" ".join(str(err).split())[:300])
    failures = _failures(store)
    if failures.tampering:
        state = "tampered"
    elif store.get("validation_state") == "Trusted" and not failures.credential:
        state = "trusted"
    else:
        state = "untrusted"
    notes = [] if bundle.name else ["no trust list is bundled: no signer can be trusted"]
    return C2paResult(state, _manifests(store), failures, trust_list=bundle.name, notes=notes)


@lru_cache(maxsize=1)
def _context() -> Any:
    import c2pa

    settings = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False},
        "core": {"allowed_network_hosts": []},  # an empty allow-list blocks every request
        "trust": trust.bundled().settings(),
    }
    return c2pa.Context.from_dict(settings)


def _unreadable(message: str) -> C2paResult:
    url = _URL.search(message) if "remote" in message.lower() else None
    if url:
        return C2paResult("remote", remote_url=url.group(0),
                          notes=[f"C2PA manifest is stored remotely at {url.group(0)}: not fetched"])
    return C2paResult("invalid", notes=[f"C2PA data present but unreadable: {message}"])


def _failures(store: dict) -> C2paFailures:
    results = store.get("validation_results") or {}
    if results:
        entries = list((results.get("activeManifest") or {}).get("failure") or [])
        for delta in results.get("ingredientDeltas") or []:
            entries += (delta.get("validationDeltas") or {}).get("failure") or []
    else:
        entries = store.get("validation_status") or []
    failures = C2paFailures()
    for code in dict.fromkeys(entry.get("code") for entry in entries):
        if not code:
            continue
        credential = code.startswith("signingCredential.") or code in _CREDENTIAL_CODES
        (failures.credential if credential else failures.tampering).append(code)
    return failures


def _manifests(store: dict) -> list[C2paManifest]:
    """The active manifest first, then the ingredients' manifests with how they were used."""
    active = store.get("active_manifest")
    manifests = {label: body for label, body in (store.get("manifests") or {}).items() if isinstance(body, dict)}
    used_as = {
        ingredient.get("active_manifest"): _text(ingredient.get("relationship"))
        for body in manifests.values()
        for ingredient in body.get("ingredients") or []
        if isinstance(ingredient, dict)
    }
    ordered = sorted(manifests.items(), key=lambda item: item[0] != active)
    return [_manifest(label, body, label == active, used_as.get(label)) for label, body in ordered]


def _manifest(label: str, body: dict, active: bool, relationship: str | None) -> C2paManifest:
    signature = body.get("signature_info") or {}
    return C2paManifest(
        label=label,
        active=active,
        relationship=None if active else relationship,
        claim_generator=_text(body.get("claim_generator")) or _agent((body.get("claim_generator_info") or [None])[0]),
        signer=_text(signature.get("common_name")),
        issuer=_text(signature.get("issuer")),
        signed_at=_text(signature.get("time")),
        actions=_actions(body),
    )


def _actions(body: dict) -> list[C2paAction]:
    actions: list[C2paAction] = []
    for assertion in body.get("assertions") or []:
        if not (isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions")):
            continue
        data = assertion.get("data") if isinstance(assertion.get("data"), dict) else {}
        agents = data.get("softwareAgents") if isinstance(data.get("softwareAgents"), list) else []
        for entry in data.get("actions") or []:
            if not isinstance(entry, dict) or len(actions) >= MAX_ACTIONS:
                continue
            index = entry.get("softwareAgentIndex")
            agent = entry.get("softwareAgent")
            if agent is None and isinstance(index, int) and 0 <= index < len(agents):
                agent = agents[index]
            source = _text(entry.get("digitalSourceType"))
            actions.append(C2paAction(
                action=_text(entry.get("action")) or "",
                digital_source_type=source,
                source_type=sourcetypes.short_term(source),
                software_agent=_agent(agent),
            ))
    return actions


def _agent(value: object) -> str | None:
    """A softwareAgent or claim generator: a string, or a {name, version} record."""
    if isinstance(value, dict):
        return " ".join(text for text in (_text(value.get("name")), _text(value.get("version"))) if text) or None
    return _text(value)


def _text(value: object) -> str | None:
    return (value.strip()[:500] or None) if isinstance(value, str) else None
