"""The policy area."""
