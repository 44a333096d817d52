"""Compression schemes."""
