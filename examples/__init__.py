"""Runnable examples: `demo.py` and the seed guide's examples in `guide/`."""
