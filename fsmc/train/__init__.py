"""Training of teachers that are trained here (the embedded default)."""
