"""Adapters: steer at any alpha, merge, combine, calibrate, inspect."""
