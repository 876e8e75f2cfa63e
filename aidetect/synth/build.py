"""`aidetect synth`: aligned fakes made from real photos.

For every real photo under REAL_ROOT and every autoencoder family, the photo's reconstruction is
written to OUT_ROOT/1_fake/<arch>/<path> and the photo itself is linked (or copied) to
OUT_ROOT/0_real/<path>, so `aidetect train OUT_ROOT` takes the pairs as they are. A real and its
fake share content; what separates them is the decoder's upsampling trace.

Nothing else may separate them: each fake is saved in its twin's format, with the twin's JPEG
quantisation tables and chroma subsampling, at the twin's size; and `synth.json` reports, per
family, the PSNR against the twins and how well trivial statistics (Laplacian energy for sharpness,
mean luminance, mean saturation) tell fakes from reals (ROC AUC; 0.5 means they cannot). Trained networks are kept in
OUT_ROOT/models/ and reused by a later run; one that stopped at its step limit before it was sharp
trains on when the run is repeated with a higher --max-steps. Until it is sharp, its fakes go to
OUT_ROOT/unsharp/<arch>/ instead, outside the label folders: `train` ignores them, so OUT_ROOT never
teaches "blurry means fake".

A pretrained family (taef2) is loaded from the user's folder instead of trained, gets the same held-out
check and the same folders, and records its weights' SHA-256 in OUT_ROOT/models/<arch>.json. Its fakes
depend on nothing else, so an interrupted run resumes: a repeated run keeps the fakes already written
with the same weights (and newer than their twins) and makes only the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, JpegImagePlugin
from sklearn.metrics import roc_auc_score

from ..atomic import atomic_open
from ..datasets import LABEL_FOLDERS, REAL, DatasetError, label_of
from ..images import ImageError, load_image
from ..inputs import iter_inputs
from ..runtime import resolve_device
from .autoencoders import AUTOENCODERS, Autoencoder, build_autoencoder, default_archs, load_pretrained
from .config import FitConfig, SynthConfig
from .fit import FitResult, check_pretrained, fit_autoencoder, laplacian_energy, luminance, psnr

REPORT_NAME = "synth.json"
FAKES, UNSHARP = "1_fake", "unsharp"  # where a family's fakes go once sharp, and before
HELD_OUT_EVERY = 20  # every 20th photo is kept out of autoencoder training, to check sharpness on
_WRITABLE = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass
class ArchReport:
    """One family's training and the statistics of its written fakes against their twins."""

    fit: FitResult
    images: int
    psnr: float  # mean dB, decoded fake file vs decoded twin
    sharpness_ratio: float  # median over pairs of Laplacian energy fake / real
    sharpness_auc: float  # ROC AUC of Laplacian energy for fake vs real (0.5: inseparable)
    luminance_auc: float  # the same for mean luminance (a decoder's brightness shift)
    saturation_auc: float  # and for mean saturation (its colour shift)
    folder: str  # where the fakes were written, relative to OUT_ROOT (1_fake/<arch> or unsharp/<arch>)
    weights: dict[str, str] | None = None  # a pretrained family's files -> SHA-256 (None: trained here)
    reused: int = 0  # fakes kept from an interrupted run with the same weights (pretrained families)


@dataclass
class SynthReport:
    real_root: str
    out_root: str
    reals: int
    archs: list[ArchReport]
    errors: list[tuple[str, str]]  # (path, reason) of reals that could not be used

    def to_dict(self) -> dict:
        return asdict(self)


def find_reals(root: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(path, output-relative path) of the real photos under `root`: those below a `0_real` folder,
    or every image when `root` has no label folders. The label folders leave the relative path."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    items = [(item, label_of(item.path, root)) for item in iter_inputs([str(root)])]
    labelled = any(label is not None for _, label in items)
    found = []
    for item, label in items:
        if labelled and label != REAL:
            continue
        parts = Path(item.path).relative_to(root).parts
        found.append((Path(item.path), Path(*[p for p in parts if p not in LABEL_FOLDERS])))
    if not found:
        raise DatasetError(f"{root}: no real images (expected photos, or a 0_real folder of them)")
    return sorted(found)


def _unit(pixels: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float in [0, 1]."""
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float() / 255


def reconstruct(model: Autoencoder, pixels: np.ndarray) -> np.ndarray:
    """The autoencoder's version of an H x W x 3 uint8 image, same size (edges padded by reflection),
    computed on the model's device."""
    x = _unit(pixels).to(next(model.parameters()).device)
    height, width = pixels.shape[:2]
    factor = model.factor
    pad_h, pad_w = -height % factor, -width % factor
    mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
    x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    with torch.no_grad():
        y = model(x)[0, :, :height, :width].clamp(0, 1)
    return (y.permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def save_like(pixels: np.ndarray, twin: Path, target: Path) -> Path:
    """Write `pixels` in the twin's format (JPEG with the twin's quantisation tables and subsampling,
    so quality cannot tell them apart); formats Pillow cannot write become PNG. Returns the path."""
    with Image.open(twin) as source:
        fmt = source.format if source.format in _WRITABLE else "PNG"
        options: dict = {}
        if fmt == "JPEG":
            options["qtables"] = source.quantization
            sampling = JpegImagePlugin.get_sampling(source)
            if sampling >= 0:
                options["subsampling"] = sampling
        elif fmt == "WEBP":
            options["lossless"] = bool(source.info.get("lossless"))
    if fmt == "PNG" and target.suffix.lower() != ".png":
        target = target.with_suffix(".png")
    with atomic_open(target, "wb") as handle:
        Image.fromarray(pixels).save(handle, format=fmt, **options)
    return target


def _place_real(source: Path, target: Path, copy: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    if copy:
        shutil.copyfile(source, target)
    else:
        target.symlink_to(source.resolve())


def _auc(fake: list[float], real: list[float]) -> float:
    return float(roc_auc_score([1] * len(fake) + [0] * len(real), fake + real))


def _saturation(pixels: np.ndarray) -> float:
    """Mean HSV saturation in [0, 1]."""
    high, low = pixels.max(axis=2).astype(np.float32), pixels.min(axis=2).astype(np.float32)
    return float(np.mean((high - low) / np.maximum(high, 1)))


def _pair_statistics(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """ArchReport's statistics of (fake, real) pixel pairs: mean PSNR, median sharpness ratio, and how
    well sharpness, mean luminance and mean saturation alone separate the fakes from the reals."""
    quality, sharp, luma, saturation = [], ([], []), ([], []), ([], [])
    for fake, real in pairs:
        a, b = _unit(fake), _unit(real)
        quality.append(float(psnr(a, b)))
        for column, (image, unit) in enumerate(((fake, a), (real, b))):
            sharp[column].append(float(laplacian_energy(unit)))
            luma[column].append(float(luminance(unit).mean()))
            saturation[column].append(_saturation(image))
    ratio = float(np.median(np.asarray(sharp[0]) / np.maximum(sharp[1], 1e-12)))
    return {"psnr": float(np.mean(quality)), "sharpness_ratio": ratio, "sharpness_auc": _auc(*sharp),
            "luminance_auc": _auc(*luma), "saturation_auc": _auc(*saturation)}


def _model_path(out_root: Path, arch: str) -> Path:
    return out_root / "models" / f"{arch}.pt"


def _load_or_fit(arch: str, out_root: Path, train: list[np.ndarray], held_out: list[np.ndarray],
                 config: FitConfig, on_progress: Callable[[str, int, int], None] | None) -> tuple[Autoencoder, FitResult]:
    """A network saved by an earlier run (state dict and fit result, loaded without pickle code), else a
    new one. A saved network that stopped at its step limit trains on when `config.max_steps` is higher."""
    path = _model_path(out_root, arch)
    resume = None
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_autoencoder(arch)
        model.load_state_dict(saved["state_dict"])
        result = FitResult(**json.loads(saved["fit"]))
        if result.reached or result.steps >= config.max_steps:
            return model.eval(), result
        resume = (model, result)
    progress = (lambda done, total: on_progress(f"train {arch}", done, total)) if on_progress else None
    model, result = fit_autoencoder(arch, train, held_out, config, progress, resume)
    with atomic_open(path, "wb") as handle:
        torch.save({"state_dict": model.state_dict(), "fit": json.dumps(result.to_dict())}, handle)
    return model, result


def _pretrained_stamp(out_root: Path, arch: str, digests: dict[str, str]) -> bool:
    """Whether OUT_ROOT's fakes of a pretrained family were made with these weights. If not, they are
    removed (both folders) and the new weights recorded, so later runs may keep what this one writes."""
    stamp = out_root / "models" / f"{arch}.json"
    try:
        if json.loads(stamp.read_text(encoding="utf-8")) == digests:
            return True
    except (OSError, ValueError):
        pass
    for folder in (FAKES, UNSHARP):
        if (out_root / folder / arch).exists():
            shutil.rmtree(out_root / folder / arch)
    with atomic_open(stamp, "w", encoding="utf-8") as handle:
        json.dump(digests, handle, indent=2)
    return False


def _kept_fake(target: Path, twin: Path) -> Path | None:
    """An earlier run's fake of `twin` at `target` (or its PNG stand-in), if not older than the twin."""
    for path in (target, target.with_suffix(".png")):
        if path.is_file() and path.stat().st_mtime >= twin.stat().st_mtime:
            return path
    return None


def synthesize(real_root: str | os.PathLike, out_root: str | os.PathLike, config: SynthConfig | None = None,
               on_progress: Callable[[str, int, int], None] | None = None) -> SynthReport:
    """Train (or load) each family on the reals, write the aligned fakes and links, report the statistics."""
    config = config or SynthConfig()
    archs = config.archs or default_archs(config.pretrained_dir is not None)
    for arch in archs:
        if arch not in AUTOENCODERS:
            raise ValueError(f"unknown autoencoder {arch!r}; choose from {', '.join(AUTOENCODERS)}")
    device = resolve_device(config.fit.device)  # a bad device is an error before any work
    pretrained = {arch: load_pretrained(arch, config.pretrained_dir)  # and so are missing or wrong weights
                  for arch in archs if AUTOENCODERS[arch].weights}
    out_root = Path(out_root)
    reals = find_reals(real_root)
    pixels: dict[Path, np.ndarray] = {}
    errors: list[tuple[str, str]] = []
    for index, (path, _) in enumerate(reals):
        try:
            pixels[path] = load_image(path)
        except ImageError as exc:
            errors.append((str(path), str(exc)))
        if on_progress:
            on_progress("read photos", index + 1, len(reals))
    usable = [(path, rel) for path, rel in reals if path in pixels]
    side = 2 * config.fit.crop  # held-out checks use crops twice the training size
    trainable = [pixels[p] for p, _ in usable if min(pixels[p].shape[:2]) >= side]
    held_out, train = trainable[::HELD_OUT_EVERY], [im for i, im in enumerate(trainable) if i % HELD_OUT_EVERY]
    if not held_out or (not train and len(pretrained) < len(archs)):
        raise DatasetError(f"{real_root}: too few photos of at least {side}x{side} pixels to "
                           f"{'train on' if held_out else 'check on'}")
    for path, rel in usable:
        _place_real(path, out_root / "0_real" / rel, config.copy_reals)
    reports = []
    for arch in archs:
        if arch in pretrained:
            model, digests = pretrained[arch]
            fit = check_pretrained(arch, model.to(device), held_out, config.fit)
            resume = _pretrained_stamp(out_root, arch, digests)
        else:
            model, fit = _load_or_fit(arch, out_root, train, held_out, config.fit, on_progress)
            model.to(device)
            digests, resume = None, False
        folder, stale = (FAKES, UNSHARP) if fit.reached else (UNSHARP, FAKES)
        if (out_root / stale / arch).exists():  # an earlier run's; failing to remove it must not pass silently
            shutil.rmtree(out_root / stale / arch)
        pairs, reused = [], 0
        for index, (path, rel) in enumerate(usable):
            written = _kept_fake(out_root / folder / arch / rel, path) if resume else None
            if written:
                reused += 1
            else:
                written = save_like(reconstruct(model, pixels[path]), path, out_root / folder / arch / rel)
            pairs.append((load_image(written), pixels[path]))  # measured as the detector will read it
            if on_progress:
                on_progress(f"write {arch}", index + 1, len(usable))
        reports.append(ArchReport(fit, len(pairs), folder=f"{folder}/{arch}", weights=digests, reused=reused,
                                  **_pair_statistics(pairs)))
    report = SynthReport(str(real_root), str(out_root), len(usable), reports, errors)
    with atomic_open(out_root / REPORT_NAME, "w", encoding="utf-8") as handle:
        json.dump(report.to_dict(), handle, indent=2)
    return report
