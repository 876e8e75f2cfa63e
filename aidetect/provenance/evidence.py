"""What a file says about its own origin: the `Provenance` record and its parts.

Plain dataclasses with no third-party types in them, so that reports, JSON output and the verdict
can read them without importing c2pa, Pillow or torch.

`Provenance.c2pa_state` is one of:

- ``none``: no C2PA manifest in the file.
- ``trusted``: a manifest whose hashes and signatures all verify, by a signer that chains to the
  bundled trust list (`trust_list` names it).
- ``untrusted``: hashes and signatures verify, but the signing credential is not on the bundled
  trust list, has expired or was revoked (`c2pa_failures.credential` says which).
- ``tampered``: a hash or signature check failed, so the file was altered after signing (or the
  manifest was damaged); `c2pa_failures.tampering` says which check.
- ``invalid``: C2PA data is present but could not be read at all (truncated or malformed JUMBF).
- ``remote``: the file only points at a manifest on a server (`remote_manifest_url`); it is never
  fetched, so nothing was verified.
- ``unverified``: C2PA data is present but c2pa-python is not available to check it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..results import GENERATED

C2PA_STATES = ("none", "trusted", "untrusted", "tampered", "invalid", "remote", "unverified")
SIGNED_STATES = ("trusted", "untrusted")  # hashes and signatures verify: the manifest speaks for the file


@dataclass
class C2paAction:
    """One entry of a manifest's actions assertion."""

    action: str
    digital_source_type: str | None = None  # the URI as written
    source_type: str | None = None  # its final term, e.g. "trainedAlgorithmicMedia"
    software_agent: str | None = None


@dataclass
class C2paManifest:
    """One manifest of the store: the active one describes this file, the others its ingredients."""

    label: str
    active: bool
    relationship: str | None = None  # how an ingredient was used: "parentOf", "componentOf", ...
    claim_generator: str | None = None
    signer: str | None = None  # the signing certificate's common name
    issuer: str | None = None  # the signing certificate's organisation
    signed_at: str | None = None  # the trusted timestamp, when there is one
    actions: list[C2paAction] = field(default_factory=list)


@dataclass
class C2paFailures:
    """Failed validation codes, split by what they mean for the declaration."""

    tampering: list[str] = field(default_factory=list)  # void the declaration
    credential: list[str] = field(default_factory=list)  # weaken it: untrusted, expired, revoked


@dataclass
class ToolDeclaration:
    """A generator that the file's metadata names, and how far that can be believed."""

    tool: str
    found_in: str  # e.g. "png:parameters", "exif:UserComment", "xmp:Iptc4xmpExt:DigitalSourceType"
    basis: str  # "signed" (intact C2PA) or "unsigned" (anyone can write or remove it)
    declares: str = GENERATED  # or AI_EDITED


@dataclass
class Provenance:
    """Everything `read_provenance` found in one file; problems go to `notes`, never raise."""

    path: str
    c2pa_state: str = "none"
    c2pa: list[C2paManifest] = field(default_factory=list)
    c2pa_failures: C2paFailures = field(default_factory=C2paFailures)
    remote_manifest_url: str | None = None
    trust_list: str | None = None  # name and date of the trust list the signer was checked against
    xmp: dict[str, str | list[str]] = field(default_factory=dict)  # "prefix:Property" -> value(s)
    png_text: dict[str, str] = field(default_factory=dict)
    exif: dict[str, str] = field(default_factory=dict)
    tools: list[ToolDeclaration] = field(default_factory=list)
    unrecognised_keys: list[str] = field(default_factory=list)  # text chunk keys no recogniser knows
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
