"""Correlation coefficients for estimate-versus-truth comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant."""
    n = len(a)
    if n != len(b) or n < 2:
        raise ValueError("pearson needs two sequences of equal length >= 2")
    ma, mb = math.fsum(a) / n, math.fsum(b) / n
    cov = math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = math.fsum((x - ma) ** 2 for x in a)
    vb = math.fsum((y - mb) ** 2 for y in b)
    if va == 0.0 or vb == 0.0:
        return math.nan
    return cov / math.sqrt(va * vb)


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    return pearson(average_ranks(a), average_ranks(b))
