"""Shipping the student: the inference runtime that runs it fastest on this CPU, measured, and its latency as a user reads it."""
