"""Checks run on every target's artifact: accuracy against eager PyTorch, and latency."""
