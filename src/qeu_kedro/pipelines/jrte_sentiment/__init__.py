"""JRTE ``pn`` 3-class sentiment: a 2-class model mapped to 3 classes (Level 1), a fine-tuned
encoder (Level 2), error analysis (Level 3) and over-fitting countermeasures (Level 4)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
