"""The trained default checkpoint ships here (see MODEL_CARD.md); installed as `aidetect.weights`."""
