"""Composable, pure-ASGI middleware."""

from .compose import Layer, compose

__version__ = "0.1.0"

__all__ = [
    "Layer",
    "__version__",
    "compose",
]
