"""Fingerprints: compute, compare and index content signatures."""
