"""Measuring the detector: metrics and thresholds (metrics.py), labelled sets under perturbations
(evaluate.py, perturb.py), calibration of a checkpoint's threshold (calibrate.py), speed and memory
(bench.py)."""
