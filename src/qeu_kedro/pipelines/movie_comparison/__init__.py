"""The ridge analysis with the pretrained and the fine-tuned model, side by side."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
