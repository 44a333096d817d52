"""Data: sources, few-shot sampling, OOD curation, manifests and validation."""
