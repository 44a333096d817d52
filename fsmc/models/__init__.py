"""Models: architectures, the self-normalising wrapper, checkpoints."""
