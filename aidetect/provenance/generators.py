"""Names of image generators as they appear in free-text metadata fields (Software, CreatorTool,
Credit, a C2PA softwareAgent), mapped to one display name each.

Used only on fields that name the producing software, never on prompts or descriptions, where a
generator's name is just a word someone typed.
"""

from __future__ import annotations

import re

_GENERATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("OpenAI", r"\b(openai|chatgpt|dall[\s·-]?e|gpt-4o|gpt-image|sora)\b"),
        ("Adobe Firefly", r"\bfirefly\b"),
        ("Microsoft Designer", r"\b(bing image creator|microsoft designer|image creator from microsoft)\b"),
        ("Google AI", r"\b(imagen|gemini|google ai)\b"),
        ("Midjourney", r"\bmidjourney\b"),
        ("Stable Diffusion", r"\b(stable diffusion|stability ai|sdxl)\b"),
        ("NovelAI", r"\bnovelai\b"),
        ("Ideogram", r"\bideogram\b"),
        ("Leonardo.Ai", r"\bleonardo\.ai\b"),
        ("Meta AI", r"\b(meta ai|imagine with meta)\b"),
    )
)


def generator_name(text: str | None) -> str | None:
    """The display name of the generator that `text` names, or None if it names none we know."""
    if not text:
        return None
    return next((name for name, pattern in _GENERATORS if pattern.search(text)), None)
