"""Maintainer tools that are not part of any node (see tools/mutate.py)."""
