"""aidetect: tell AI-generated images from real photographs.

    from aidetect import Detector
    results = Detector.load().predict(["photo.jpg"])
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .engine import Box, Detector, Prediction
from .model import FusedDetector, ModelConfig

__version__ = "0.1.0"
__all__ = ["Box", "CheckpointError", "Detector", "FusedDetector", "ModelConfig", "Prediction",
           "load_checkpoint", "save_checkpoint"]
