"""The seed guide's examples, one file each, as the guide writes them (``bocadillo`` read as ``wsendpoints``).

Only blank lines differ from the guide, where ``ruff format`` wants two.
"""
