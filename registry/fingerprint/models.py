"""Tables of the fingerprint area."""
