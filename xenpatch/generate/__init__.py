"""Generating a patch series from a change description."""
