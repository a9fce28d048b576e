"""JRTE ``pn`` sentiment: a 2-class model mapped to the task's classes (Level 1), a fine-tuned
encoder (Level 2), error analysis (Level 3), over-fitting countermeasures (Level 4) and
improvements measured against Level 2 (Level 5)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
