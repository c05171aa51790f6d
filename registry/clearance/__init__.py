"""The clearance area."""
