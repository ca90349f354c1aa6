"""lazarus-cot-router: a trained CoT rewriter for Lazarus virtual experts."""

__version__ = "0.1.0"
