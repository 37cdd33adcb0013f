"""Inference backends: the runner protocol (base), one module per backend, the registry and auto choice."""
