"""Name the generators that a file's metadata declares, and on what basis.

Each recogniser keys on what a generator writes on purpose (AUTOMATIC1111's `parameters`, ComfyUI's
`prompt` and `workflow`, an IPTC digital source type, ...). A PNG text key that no recogniser knows
is listed by name, never guessed at. Everything but an intact C2PA manifest is 'unsigned': anyone
can write or strip it.
"""

from __future__ import annotations

import json
import re

from . import sourcetypes
from .declarations import AI_KINDS, declared_by
from .evidence import SIGNED_STATES, Provenance, ToolDeclaration
from .generators import generator_name

# keys that PNG defines or that image tools commonly write, which say nothing about generation
_STANDARD_KEYS = frozenset({
    "Title", "Author", "Description", "Copyright", "Creation Time", "Software", "Disclaimer",
    "Warning", "Source", "Comment", "XML:com.adobe.xmp",
})
_KEYS_OF = {"invokeai_metadata": "InvokeAI", "sd-metadata": "InvokeAI", "Dream": "InvokeAI",
            "fooocus_scheme": "Fooocus", "sui_image_params": "SwarmUI"}
_JSON_KEYS_OF = {"prompt": "ComfyUI", "workflow": "ComfyUI"}
_A1111_SETTINGS = re.compile(r"(^|\n)Steps: \d+, Sampler: ")
_FORGE_VERSION = re.compile(r"Version: f\d")
_MIDJOURNEY_JOB = re.compile(r"Job ID: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIGITAL_SOURCE_TYPE = "Iptc4xmpExt:DigitalSourceType"


def recognise(provenance: Provenance) -> tuple[list[ToolDeclaration], list[str]]:
    """(declared tools, unrecognised PNG text keys) of an otherwise filled `Provenance`."""
    tools = _c2pa_tools(provenance) + _xmp_tools(provenance.xmp) + _exif_tools(provenance.exif)
    unknown = []
    for key, value in provenance.png_text.items():
        tool = _png_tool(key, value)
        if tool:
            tools.append(ToolDeclaration(tool, f"png:{key}", "unsigned"))
        elif key not in _STANDARD_KEYS:
            unknown.append(key)
    unique = {(tool.tool, tool.found_in): tool for tool in tools}
    return list(unique.values()), unknown


def _c2pa_tools(provenance: Provenance) -> list[ToolDeclaration]:
    if provenance.c2pa_state not in SIGNED_STATES:
        return []  # a tampered manifest's declaration is void
    tools = []
    for manifest in provenance.c2pa:
        declared = declared_by(manifest)
        if declared and declared.kind in AI_KINDS:
            name = (generator_name(declared.agent) or generator_name(manifest.claim_generator)
                    or declared.agent or manifest.issuer or "unnamed generator")
            tools.append(ToolDeclaration(name, f"c2pa:{manifest.label}", "signed", declared.kind))
    return tools


def _xmp_tools(xmp: dict[str, str | list[str]]) -> list[ToolDeclaration]:
    for value in _values(xmp, _DIGITAL_SOURCE_TYPE):
        kind = sourcetypes.classify(sourcetypes.short_term(value))
        if kind in AI_KINDS:
            return [ToolDeclaration(_xmp_generator(xmp), f"xmp:{_DIGITAL_SOURCE_TYPE}", "unsigned", kind)]
    for key in ("Iptc4xmpExt:AISystemUsed", "xmp:CreatorTool", "photoshop:Credit"):
        for value in _values(xmp, key):
            name = value if key == "Iptc4xmpExt:AISystemUsed" else generator_name(value)
            if name:
                return [ToolDeclaration(name, f"xmp:{key}", "unsigned")]
    return []


def _xmp_generator(xmp: dict[str, str | list[str]]) -> str:
    """The generator an XMP packet names beside its AI digital source type."""
    system = " ".join(_values(xmp, "Iptc4xmpExt:AISystemUsed")[:1]
                      + _values(xmp, "Iptc4xmpExt:AISystemVersionUsed")[:1])
    if system:
        return system
    if any(_MIDJOURNEY_JOB.search(text) for text in _values(xmp, "dc:description")):
        return "Midjourney"
    named = (generator_name(text) for key in ("xmp:CreatorTool", "photoshop:Credit") for text in _values(xmp, key))
    return next((name for name in named if name), "unnamed generator")


def _exif_tools(exif: dict[str, str]) -> list[ToolDeclaration]:
    tools = []
    if name := generator_name(exif.get("Software")):
        tools.append(ToolDeclaration(name, "exif:Software", "unsigned"))
    if name := _parameters_tool(exif.get("UserComment", "")):
        tools.append(ToolDeclaration(name, "exif:UserComment", "unsigned"))
    return tools


def _png_tool(key: str, value: str) -> str | None:
    if key in _KEYS_OF:
        return _KEYS_OF[key]
    if key in _JSON_KEYS_OF:
        return _JSON_KEYS_OF[key] if isinstance(_json(value), dict) else None
    if key == "parameters":
        return _parameters_tool(value)
    if key == "Software":
        return generator_name(value)
    if key == "Comment":  # NovelAI's settings; its Software chunk usually says so too
        settings = _json(value)
        return "NovelAI" if isinstance(settings, dict) and {"uc", "steps", "sampler"} <= settings.keys() else None
    if key == "Description":
        return "Midjourney" if _MIDJOURNEY_JOB.search(value) else None
    return None


def _parameters_tool(text: str) -> str | None:
    """AUTOMATIC1111 and Forge write 'prompt / Negative prompt / Steps: ...'; Fooocus writes JSON."""
    settings = _json(text)
    if isinstance(settings, dict):
        scheme = f"{settings.get('version', '')} {settings.get('metadata_scheme', '')}".lower()
        return "Fooocus" if "fooocus" in scheme else None
    if _A1111_SETTINGS.search(text):
        return "Forge" if _FORGE_VERSION.search(text) else "AUTOMATIC1111"
    return None


def _json(text: str) -> object:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _values(xmp: dict[str, str | list[str]], key: str) -> list[str]:
    value = xmp.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
