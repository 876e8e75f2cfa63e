"""Cutting grids and composites into their single images: sample grids of a generator, the output
galleries of demo screenshots. Pure functions on pixel arrays; the manifest's CutRule says where."""

from __future__ import annotations

import numpy as np

from .manifest import CutRule


def _flat(line: np.ndarray, tolerance: int = 8, share: float = 0.95) -> bool:
    """Nearly all pixels of a row or column within `tolerance` of its median colour."""
    deviation = np.abs(line.astype(np.int16) - np.median(line, axis=0).astype(np.int16)).max(axis=1)
    return bool(np.mean(deviation <= tolerance) >= share)


def trim_borders(pixels: np.ndarray) -> np.ndarray:
    """Strip uniform rows and columns from the edges (frame lines, letterboxing around a panel)."""
    top, bottom, left, right = 0, pixels.shape[0], 0, pixels.shape[1]
    changed = True
    while changed and bottom - top > 1 and right - left > 1:
        changed = False
        for side in ("top", "bottom", "left", "right"):
            if bottom - top <= 1 or right - left <= 1:
                break
            line = {"top": pixels[top, left:right], "bottom": pixels[bottom - 1, left:right],
                    "left": pixels[top:bottom, left], "right": pixels[top:bottom, right - 1]}[side]
            if _flat(line):
                changed = True
                top, bottom = top + (side == "top"), bottom - (side == "bottom")
                left, right = left + (side == "left"), right - (side == "right")
    return pixels[top:bottom, left:right]


def cut_cells(pixels: np.ndarray, rule: CutRule, path: str) -> list[tuple[int, np.ndarray]]:
    """The cells of a grid, row-major, as (cell number, pixels), without the skipped ones; trimmed if the
    rule says so. Raises ValueError when the rule's box does not fit the image."""
    height, width = pixels.shape[:2]
    x0, y0, box_w, box_h = rule.boxes.get(path, (0, 0, width, height))
    if x0 + box_w > width or y0 + box_h > height:
        raise ValueError(f"cut box {[x0, y0, box_w, box_h]} does not fit the {width}x{height} image")
    cell_w = (box_w - rule.gap * (rule.cols - 1)) / rule.cols
    cell_h = (box_h - rule.gap * (rule.rows - 1)) / rule.rows
    if cell_w < 1 or cell_h < 1:
        raise ValueError(f"{rule.rows}x{rule.cols} cells with gap {rule.gap} do not fit a {box_w}x{box_h} box")
    cells = []
    for index in range(rule.rows * rule.cols):
        if index in rule.skip:
            continue
        row, col = divmod(index, rule.cols)
        left, top = x0 + col * (cell_w + rule.gap), y0 + row * (cell_h + rule.gap)
        cell = pixels[round(top):round(top + cell_h), round(left):round(left + cell_w)]
        cells.append((index, trim_borders(cell) if rule.trim else cell))
    return cells
