"""The bundled trust lists that c2pa checks signers against (trust/SOURCES.txt says where from).

c2pa-python trusts no signer unless given anchors, so without this bundle every manifest would read
'untrusted'. The first line of SOURCES.txt is the name reported with each result.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

_ANCHORS = ("c2pa-trust-list.pem", "cai-interim-anchors.pem")
_ALLOWED = "cai-interim-allowed.pem"  # end-entity certificates trusted as they are
_EKUS = "cai-interim-ekus.cfg"  # key usages accepted besides c2pa's defaults


@dataclass(frozen=True)
class TrustBundle:
    name: str | None  # None when no trust list is bundled
    anchors: str = ""
    allowed: str = ""
    ekus: str = ""

    def settings(self) -> dict:
        """The "trust" section of c2pa settings."""
        if self.name is None:
            return {}
        return {"trust_anchors": self.anchors, "allowed_list": self.allowed, "trust_config": self.ekus}


@lru_cache(maxsize=1)
def bundled() -> TrustBundle:
    from importlib import resources  # pulls in tempfile, shutil, ...: only once a manifest is read

    folder = resources.files(__package__) / "trust"
    try:
        name = (folder / "SOURCES.txt").read_text(encoding="utf-8").splitlines()[0].strip()
        anchors = "\n".join((folder / file).read_text(encoding="utf-8") for file in _ANCHORS)
        allowed = (folder / _ALLOWED).read_text(encoding="utf-8")
        ekus = (folder / _EKUS).read_text(encoding="utf-8")
    except (OSError, IndexError):
        return TrustBundle(None)
    return TrustBundle(name, anchors, allowed, ekus)
