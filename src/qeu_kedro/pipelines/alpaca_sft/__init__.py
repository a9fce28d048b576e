"""Rule-based reasoning edits of an alpaca-style sheet, and LoRA SFT of a small causal LM measured before and after."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
