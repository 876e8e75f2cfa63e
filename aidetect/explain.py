"""Explanation pictures for `aidetect explain`: where the model looked and how much each patch counted.

One picture per image: the image (scaled for display) with the selected patches as numbered boxes,
the PSM's activation map as a translucent heat map with its colour bar, the attention that the
decision paid to each patch, and the crops as the local branch saw them. The same numbers go to a
JSON file beside it. With a real-only branch in the checkpoint, a second picture shows its tile map:
where the image's residuals fit the real-photo model worst.

Geometry (`layout`, `heat_values`) is computed apart from drawing (`render`) so that tests can check
where things land without reading pixels back. Every position is in canvas pixels: the image sits at
`Layout.image` scaled by `Layout.scale`, and everything drawn over it uses that same frame.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_open
from .engine import Detector
from .images import ImageError, load_image
from .inputs import InputItem, display_path
from .results import Evidence, Prediction

MAX_SIDE = 1024  # larger images are shown downscaled to this longest side
MIN_SIDE = 320  # smaller ones are shown upscaled, so that boxes and labels stay readable
MARGIN, GAP = 16, 8
CAPTION_HEIGHT = 66  # three lines of text above the image
BAR_WIDTH, BAR_LABEL_WIDTH, BAR_MIN_HEIGHT, BAR_MAX_HEIGHT = 18, 96, 120, 320
LABEL_HEIGHT = 22
TILE_LABEL_HEIGHT = 44  # two lines under each crop
TILE_MIN, TILE_MAX = 128, 224
TILE_BORDER, TILE_GAP = 5, 12  # each crop's frame lies outside it, in the gap
HEAT_ALPHA = (0.15, 0.6)  # opacity of the coldest and of the hottest colour over the image
PATCH_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]
BACKGROUND, INK = (250, 250, 250), (20, 20, 20)
# inferno, sampled at 9 points: perceptually uniform and readable in grey
_INFERNO = np.array([(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                     (249, 140, 10), (249, 201, 50), (252, 255, 164)], dtype=np.float64)

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in canvas pixels, x1 and y1 exclusive


@dataclass(frozen=True)
class Layout:
    """Where everything goes on the canvas."""

    scale: float  # display pixels per image pixel
    canvas: tuple[int, int]  # width, height
    image: Rect  # the scaled image
    heat: Rect  # the activation map: the view box, scaled
    boxes: list[Rect]  # the selected patches
    colour_bar: Rect
    strip_top: int  # the heading line of the crop strip
    tiles: list[Rect]  # the crops, in patch order

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> Rect:
        """An image rectangle (image pixels) in canvas pixels."""
        return scaled_rect(self.image, self.scale, (x0, y0, x1, y1))


def scaled_rect(image: Rect, scale: float, box: Sequence[float]) -> Rect:
    """`box` (x0, y0, x1, y1 in image pixels) on a canvas where the image sits at `image`, scaled by
    `scale`; at least one pixel wide and high, so that a sliver stays visible."""
    left, top = image[0] + round(box[0] * scale), image[1] + round(box[1] * scale)
    right, bottom = image[0] + round(box[2] * scale), image[1] + round(box[3] * scale)
    return left, top, max(right, left + 1), max(bottom, top + 1)


def display_scale(width: int, height: int) -> float:
    """Display pixels per image pixel: large images shrink to MAX_SIDE, small ones grow to MIN_SIDE."""
    longest = max(width, height)
    if longest > MAX_SIDE:
        return MAX_SIDE / longest
    if longest < MIN_SIDE:
        return MIN_SIDE / longest
    return 1.0


def layout(width: int, height: int, boxes: Sequence[Sequence[int]], view_box: Sequence[int]) -> Layout:
    """The canvas for an image of width x height with `boxes` (x0, y0, x1, y1 in image pixels)."""
    scale = display_scale(width, height)
    shown_w, shown_h = max(1, round(width * scale)), max(1, round(height * scale))
    origin = (MARGIN, MARGIN + CAPTION_HEIGHT)
    image = (*origin, origin[0] + shown_w, origin[1] + shown_h)
    bar_height = min(max(shown_h, BAR_MIN_HEIGHT), BAR_MAX_HEIGHT)
    bar = (image[2] + 2 * GAP, image[1], image[2] + 2 * GAP + BAR_WIDTH, image[1] + bar_height)
    panel_width = bar[2] + BAR_LABEL_WIDTH + MARGIN
    count = max(len(boxes), 1)
    tile = min(max((panel_width - 2 * MARGIN - (count - 1) * TILE_GAP) // count, TILE_MIN), TILE_MAX)
    canvas_width = max(panel_width, 2 * MARGIN + count * tile + (count - 1) * TILE_GAP)
    strip_top = max(image[3], bar[3]) + 2 * GAP
    tiles_top = strip_top + LABEL_HEIGHT + TILE_BORDER
    tiles = [(MARGIN + k * (tile + TILE_GAP), tiles_top, MARGIN + k * (tile + TILE_GAP) + tile, tiles_top + tile)
             for k in range(len(boxes))]
    return Layout(scale, (canvas_width, tiles_top + tile + TILE_LABEL_HEIGHT + MARGIN), image,
                  scaled_rect(image, scale, view_box), [scaled_rect(image, scale, box) for box in boxes], bar,
                  strip_top, tiles)


def heat_values(activation: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The activation map upsampled smoothly to `size` (width, height), normalised to 0..1.

    Bilinear with pixel centres aligned, so each feature-map cell's value sits at the centre of the
    image region it summarises, which is also where the PSM centres its boxes."""
    low, high = float(activation.min()), float(activation.max())
    spread = (np.asarray(activation, np.float32) - low) / (high - low) if high > low else np.zeros_like(activation, np.float32)
    resized = Image.fromarray(spread.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def colourise(values: np.ndarray) -> np.ndarray:
    """0..1 values to RGB uint8 through the inferno colour map."""
    position = np.clip(values, 0.0, 1.0) * (len(_INFERNO) - 1)
    below = np.minimum(position.astype(int), len(_INFERNO) - 2)
    fraction = (position - below)[..., None]
    return np.round(_INFERNO[below] * (1 - fraction) + _INFERNO[below + 1] * fraction).astype(np.uint8)


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _fit(text: str, size: int, width: int) -> str:
    """`text`, cut at the front with an ellipsis until it fits `width` pixels (paths keep their file name)."""
    font = _font(size)
    while len(text) > 1 and font.getlength(text) > width:
        text = "…" + text[2:] if text.startswith("…") else "…" + text[1:]
    return text


def _dashed_rect(draw: ImageDraw.ImageDraw, corners: Rect, colour: tuple, width: int, dash: int = 8) -> None:
    """Dashes `width` thick just inside the inclusive `corners`."""
    x0, y0, x1, y1 = corners
    for start in range(x0, x1 + 1, 2 * dash):
        end = min(start + dash - 1, x1)
        draw.rectangle((start, y0, end, y0 + width - 1), fill=colour)
        draw.rectangle((start, y1 - width + 1, end, y1), fill=colour)
    for start in range(y0, y1 + 1, 2 * dash):
        end = min(start + dash - 1, y1)
        draw.rectangle((x0, start, x0 + width - 1, end), fill=colour)
        draw.rectangle((x1 - width + 1, start, x1, end), fill=colour)


def _box(draw: ImageDraw.ImageDraw, rect: Rect, colour: tuple, full_size: bool) -> None:
    """A frame just inside `rect`: 224-px patches solid and thick, 112-px ones dashed, each on a dark
    edge that keeps it visible on any image."""
    x0, y0, x1, y1 = rect[0], rect[1], rect[2] - 1, rect[3] - 1  # Pillow's corners are inclusive
    if full_size:
        draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=5)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=colour, width=3)
    else:
        draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=1)
        _dashed_rect(draw, (x0 + 1, y0 + 1, x1 - 1, y1 - 1), colour, 2)


def _tag(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, colour: tuple, taken: list[Rect]) -> None:
    """A filled label at `xy`, moved down past the labels already `taken` (boxes often share a corner)."""
    font = _font(13)
    x, y = xy
    while True:
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        rect = (left - 3, top - 2, right + 3, bottom + 2)
        if not any(rect[0] < o[2] and o[0] < rect[2] and rect[1] < o[3] and o[1] < rect[3] for o in taken):
            break
        y += bottom - top + 5
    taken.append(rect)
    draw.rectangle(rect, fill=colour)
    draw.text((x, y), text, font=font, fill=(0, 0, 0) if sum(colour) > 400 else (255, 255, 255))


@dataclass
class Explanation:
    """A rendered explanation: the picture, the numbers behind it, and the image alone as displayed."""

    picture: Image.Image
    record: dict
    display: Image.Image


def patch_attention(evidence: Evidence) -> np.ndarray:
    """How much the decision used each patch: the global token's attention to it in the last fusion layer."""
    return evidence.attention[-1, :-1]


def render(pixels: np.ndarray, prediction: Prediction, evidence: Evidence, checkpoint: str) -> Explanation:
    """Draw the explanation of one prediction over its image (H x W x 3 uint8, as the detector decoded it)."""
    height, width = pixels.shape[:2]
    boxes = [(b.x0, b.y0, b.x1, b.y1) for b in prediction.boxes]
    geometry = layout(width, height, boxes, evidence.view_box)
    image = geometry.image
    display = Image.fromarray(pixels).resize((image[2] - image[0], image[3] - image[1]), Image.Resampling.LANCZOS,
                                             reducing_gap=3.0 if geometry.scale < 1 else None)
    canvas = Image.new("RGB", geometry.canvas, BACKGROUND)
    canvas.paste(_with_heat(display, geometry, evidence.activation), image[:2])
    draw = ImageDraw.Draw(canvas)
    attention = patch_attention(evidence)
    for number, (rect, box) in enumerate(zip(geometry.boxes, prediction.boxes), start=1):
        _box(draw, rect, PATCH_COLOURS[(number - 1) % len(PATCH_COLOURS)], box.size >= 224)
    taken: list[Rect] = []
    for number, rect in enumerate(geometry.boxes, start=1):  # tags last, so no box line crosses one
        _tag(draw, (rect[0] + 5, rect[1] + 5), f"{number} · {attention[number - 1]:.2f}",
             PATCH_COLOURS[(number - 1) % len(PATCH_COLOURS)], taken)
    _colour_bar(canvas, draw, geometry.colour_bar, evidence.activation)
    _caption(draw, geometry, prediction, evidence, checkpoint)
    _strip(canvas, draw, geometry, prediction, evidence)
    return Explanation(canvas, explanation_record(prediction, evidence, geometry, checkpoint), display)


def _with_heat(display: Image.Image, geometry: Layout, activation: np.ndarray) -> Image.Image:
    """The displayed image with the heat map blended over the view box; opacity grows with the heat."""
    left, top = geometry.image[:2]
    x0, y0, x1, y1 = geometry.heat[0] - left, geometry.heat[1] - top, geometry.heat[2] - left, geometry.heat[3] - top
    heat = heat_values(activation, (x1 - x0, y1 - y0))
    alpha = (HEAT_ALPHA[0] + (HEAT_ALPHA[1] - HEAT_ALPHA[0]) * heat)[..., None]
    pixels = np.asarray(display, np.float32).copy()
    region = pixels[y0:y1, x0:x1]
    pixels[y0:y1, x0:x1] = region * (1 - alpha) + colourise(heat) * alpha
    return Image.fromarray(np.round(pixels).astype(np.uint8))


def _colour_bar(canvas: Image.Image, draw: ImageDraw.ImageDraw, rect: Rect, activation: np.ndarray) -> None:
    x0, y0, x1, y1 = rect
    ramp = colourise(np.linspace(1.0, 0.0, y1 - y0))[:, None, :].repeat(x1 - x0, axis=1)
    canvas.paste(Image.fromarray(ramp), (x0, y0))
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=INK)
    font = _font(13)
    draw.text((x1 + 6, y0 - 2), f"max {float(activation.max()):.4g}", font=font, fill=INK)
    draw.text((x1 + 6, y1 - 14), f"min {float(activation.min()):.4g}", font=font, fill=INK)
    draw.text((x1 + 6, (y0 + y1) // 2 - 7), "activation", font=font, fill=INK)


def _caption(draw: ImageDraw.ImageDraw, geometry: Layout, prediction: Prediction, evidence: Evidence,
             checkpoint: str) -> None:
    width = geometry.canvas[0] - 2 * MARGIN
    lines = [
        (16, f"{prediction.label} ({prediction.verdict.basis}, {prediction.verdict.strength})  ·  P(generated) = "
             f"{prediction.probability:.3f}  (threshold {prediction.threshold:.3f})"),
        (13, _fit(f"{prediction.path}  ·  {prediction.width}x{prediction.height}, shown at {geometry.scale:.3g}x  ·  "
                  f"checkpoint {checkpoint}", 13, width)),
        (13, _fit(f"solid: 224 px patch, dashed: 112 px; number · attention of the decision to the patch "
                  f"(last fusion layer; global view {float(evidence.attention[-1, -1]):.2f})", 13, width)),
    ]
    y = MARGIN
    for size, text in lines:
        draw.text((MARGIN, y), text, font=_font(size), fill=INK)
        y += size + 8


def _strip(canvas: Image.Image, draw: ImageDraw.ImageDraw, geometry: Layout, prediction: Prediction,
           evidence: Evidence) -> None:
    draw.text((MARGIN, geometry.strip_top), "patches as the local branch saw them (224 x 224)", font=_font(13), fill=INK)
    attention = patch_attention(evidence)
    for number, (rect, crop, box) in enumerate(zip(geometry.tiles, evidence.crops, prediction.boxes), start=1):
        colour = PATCH_COLOURS[(number - 1) % len(PATCH_COLOURS)]
        size = rect[2] - rect[0]
        canvas.paste(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS), rect[:2])
        _box(draw, (rect[0] - TILE_BORDER, rect[1] - TILE_BORDER, rect[2] + TILE_BORDER, rect[3] + TILE_BORDER),
             colour, box.size >= 224)
        draw.multiline_text((rect[0], rect[3] + TILE_BORDER + 4), f"#{number}  {box.size} px patch\nattention {attention[number - 1]:.3f}",
                            font=_font(13), fill=INK, spacing=3)


def explanation_record(prediction: Prediction, evidence: Evidence, geometry: Layout, checkpoint: str) -> dict:
    """The numbers behind the picture, JSON-ready."""
    attention = patch_attention(evidence)
    patches = [{"number": k + 1, "box": [b.x0, b.y0, b.x1, b.y1], "size": b.size, "score": b.score,
                "attention": round(float(attention[k]), 6), "display_box": list(geometry.boxes[k]),
                "crop_tile": list(geometry.tiles[k])}
               for k, b in enumerate(prediction.boxes)]
    tokens = [f"patch {k + 1}" for k in range(len(prediction.boxes))] + ["global"]
    activation = np.asarray(evidence.activation, np.float64)
    return {
        "checkpoint": checkpoint,
        "prediction": prediction.to_dict(),
        "patches": patches,
        "attention": {"tokens": tokens, "layers": np.round(evidence.attention.astype(np.float64), 6).tolist(),
                      "used": "last layer, global token to each patch token, averaged over heads"},
        "activation": {"values": [[float(f"{v:.6g}") for v in row] for row in activation],
                       "min": float(activation.min()), "max": float(activation.max()),
                       "view_box": list(evidence.view_box), "display_view_box": list(geometry.heat)},
        "display": {"scale": geometry.scale, "image": list(geometry.image), "canvas": list(geometry.canvas)},
    }


# --- the real-only branch's map: which tiles' residuals fit the real-photo model worst ---

@dataclass
class RealOnlyMap:
    """Per tile of the image (RealPhotoModel.score_map, where localmap.tile_boxes says), the negative
    log-likelihood under the real-photo tile model; tiles above `threshold` are unlike 95 % of real tiles."""

    boxes: np.ndarray  # rows x cols x 4 (x0, y0, x1, y1) in image pixels
    scores: np.ndarray  # rows x cols
    threshold: float

    def to_dict(self) -> dict:
        return {"boxes": self.boxes.reshape(-1, 4).tolist(),
                "scores": [round(float(v), 4) for v in self.scores.ravel()], "threshold": round(self.threshold, 4),
                "unusual_tiles": int((self.scores > self.threshold).sum()), "tiles": int(self.scores.size)}


def real_only_map(detector: Detector, pixels: np.ndarray) -> RealOnlyMap | None:
    """The branch's tile map of an image, or None (no branch, no tile model, or an image too small for it)."""
    from .forensic import tile_boxes

    model = detector.real_photo
    if model is None or model.tile_mixture is None:
        return None
    try:
        scores = model.score_map(pixels)
    except ValueError:
        return None
    return RealOnlyMap(tile_boxes(*pixels.shape[:2], model.config), scores, model.tile_threshold)


def render_real_only_map(display: Image.Image, found: RealOnlyMap, prediction: Prediction) -> Image.Image:
    """The displayed image with each tile tinted by its rank among the image's tiles (inferno: worst fit
    hottest) and a red frame on the tiles above the branch's tile threshold."""
    scale = display.width / prediction.width
    canvas = Image.new("RGB", (display.width + 2 * MARGIN, display.height + 2 * MARGIN + CAPTION_HEIGHT), BACKGROUND)
    top = MARGIN + CAPTION_HEIGHT
    image = (MARGIN, top, MARGIN + display.width, top + display.height)
    order = found.scores.ravel().argsort().argsort() / max(found.scores.size - 1, 1)  # 0 best fit .. 1 worst
    heat = np.zeros((display.height, display.width), np.float32)
    for box, value in sorted(zip(found.boxes.reshape(-1, 4), order), key=lambda pair: pair[1]):
        x0, y0, x1, y1 = scaled_rect((0, 0, *display.size), scale, box)  # in the displayed image's pixels
        heat[y0:y1, x0:x1] = value  # where tiles overlap, the worse fit shows
    alpha = (HEAT_ALPHA[0] + (HEAT_ALPHA[1] - HEAT_ALPHA[0]) * heat)[..., None]
    pixels = np.asarray(display, np.float32) * (1 - alpha) + colourise(heat) * alpha
    canvas.paste(Image.fromarray(np.round(pixels).astype(np.uint8)), image[:2])
    draw = ImageDraw.Draw(canvas)
    for box, score in zip(found.boxes.reshape(-1, 4), found.scores.ravel()):
        if score > found.threshold:
            draw.rectangle(scaled_rect(image, scale, box), outline=(230, 25, 75), width=3)
    unusual = int((found.scores > found.threshold).sum())
    lines = [(16, f"real-only branch: {unusual} of {found.scores.size} tiles unlike real photos (red frames)"),
             (13, "tint: tiles ranked by how badly their residuals fit the real-photo model (hottest: worst)"),
             (13, prediction.path)]
    y = MARGIN
    for size, text in lines:
        draw.text((MARGIN, y), _fit(text, size, canvas.width - 2 * MARGIN), font=_font(size), fill=INK)
        y += size + 8
    return canvas


# --- files: names, writing, and the loop behind `aidetect explain` and `scan --report` ---

def output_names(paths: Sequence[str]) -> list[str]:
    """A file-name stem per input, unique within the run: a second a.jpg (from another folder, or A.JPG
    on a case-folding file system) becomes a-2, so no explanation overwrites another."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = os.path.splitext(os.path.basename(display_path(path)))[0]
        stem = re.sub(r"[^\w.\-]+", "_", stem).lstrip(".")[:120] or "image"
        name, count = stem, 1
        while name.lower() in used:
            count += 1
            name = f"{stem}-{count}"
        used.add(name.lower())
        names.append(name)
    return names


def write_explanation(explanation: Explanation, out_dir: Path, name: str) -> tuple[Path, Path]:
    """`name`.explain.png and `name`.explain.json in `out_dir`, each written atomically."""
    picture, record = out_dir / f"{name}.explain.png", out_dir / f"{name}.explain.json"
    with atomic_open(picture, "wb") as handle:
        explanation.picture.save(handle, format="PNG", optimize=False)
    with atomic_open(record, "w", encoding="utf-8") as handle:
        json.dump({"picture": picture.name, **explanation.record}, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return picture, record


@dataclass
class Explained:
    """One input's outcome: its prediction, the stem of its output files and, when readable, the picture
    written and the image as displayed (for thumbnails)."""

    prediction: Prediction
    name: str
    picture: Path | None = None
    display: Image.Image | None = None


def explain_inputs(detector: Detector, items: Sequence[InputItem], out_dir: Path,
                   real_only: bool = True) -> Iterator[Explained]:
    """Explain every input into `out_dir`, streaming in input order; unreadable inputs yield their error.
    With `real_only` and a checkpoint that has the real-only branch, its tile map goes beside each
    explanation too (`name`.real_only.png, and `real_only_map` in the JSON; 0.3-0.5 s an image on a CPU).

    The pixels are decoded again for drawing (the detector keeps only what the model needs), with the
    same decoder, so boxes land on the pixels they were cut from."""
    for item, name, (prediction, evidence) in zip(items, output_names([i.path for i in items]), detector.explain(items)):
        if evidence is None:
            yield Explained(prediction, name)
            continue
        try:
            pixels = load_image(item.path, detector.max_pixels)
        except ImageError as exc:  # changed or removed since the detector read it
            yield Explained(Prediction(prediction.path, error=str(exc)), name)
            continue
        explanation = render(pixels, prediction, evidence, detector.info.name)
        found = real_only_map(detector, pixels) if real_only else None
        if found is not None:
            explanation.record["real_only_map"] = found.to_dict()
            with atomic_open(out_dir / f"{name}.real_only.png", "wb") as handle:
                render_real_only_map(explanation.display, found, prediction).save(handle, format="PNG")
        picture, _ = write_explanation(explanation, out_dir, name)
        yield Explained(prediction, name, picture, explanation.display)
