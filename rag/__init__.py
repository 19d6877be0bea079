"""Turn a question into a cited answer: retrieve, select evidence, generate, verify."""

__version__ = "0.1.0"
