"""The provenance area."""
