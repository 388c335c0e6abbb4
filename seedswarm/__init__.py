"""Composition root: the `seedswarm` command line, wiring protocol/, node/ and validator/."""
