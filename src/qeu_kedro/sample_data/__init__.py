"""Generators of the small sample data the project ships in ``data/01_raw``.

The samples are written by these functions (never copied from a licensed source) and
carry a known, planted structure so tests can check that the analyses find it.
Run ``python -m qeu_kedro.sample_data`` to write them again.
"""
