"""aidetect: tell AI-generated images from real photographs."""

__version__ = "0.1.0"
