"""Tables of the clearance area."""
