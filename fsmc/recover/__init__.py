"""Few-sample accuracy recovery of a compressed student."""
