"""One folder per pipeline; ``find_pipelines`` registers every folder with a ``create_pipeline``."""
