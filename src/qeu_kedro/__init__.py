"""qeu_kedro: the blog's applied-ML experiments as Kedro pipelines."""

__version__ = "0.1.0"
