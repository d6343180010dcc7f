"""Fine-tuning and evaluation of the platform's causal LMs, run under torchrun in a PyTorchJob."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
