"""Tables of the policy area."""
