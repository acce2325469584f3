"""tailsynth: synthesize judged query-product training pairs for e-commerce retrieval."""

__version__ = "0.1.0"
