"""Measuring and improving routing: datasets, evaluation, calibration fitting, training, reports."""
