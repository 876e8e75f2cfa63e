"""The real-only forensic branch, after Nguyen, Azizpour and Stamm, "Forensic Self-Descriptions Are All You
Need for Zero-Shot Detection, Open-Set Source Attribution, and Clustering of AI-generated Images" (CVPR
2025): fitted on real photos only, it scores how unlike every real photo an image's residuals are.

    from aidetect.forensic import ForensicConfig, RealPhotoModel, fit_real_model
    model = fit_real_model(real_photo_paths, ForensicConfig())
    model.score(pixels) > model.threshold   # unlike the real photos it was fitted on

Modules, one job each: config (settings), grey (pixels to a grey plane), filters (prediction-error filter
banks and their residuals), filter_fit (learning a bank on real photos, or the least-squares baseline),
lstsq (sum-to-one ridge least squares), describe (the multi-scale self-description), mixture (the density
of real descriptions), augment (JPEG and downscaling of fitting photos), localmap (tiles for a score
map), model (the fitted model, its state, and fitting).
"""

from __future__ import annotations

from .config import ForensicConfig
from .localmap import tile_boxes
from .model import RealPhotoModel, fit_real_model

__all__ = ["ForensicConfig", "RealPhotoModel", "fit_real_model", "tile_boxes"]
