"""Baseline bins pooled so that each expects enough of a small window's observations.

A binned statistic is calibrated for windows of at least its ``min_count`` observations: there
each of the baseline's ``k`` bins (numeric deciles, or categories) expects about
``min_count / k`` of them. A smaller window of ``n`` observations gets the same expectation
per bin by pooling bins: in order, each group takes bins until it expects at least
``min_count / k`` of the ``n`` (its baseline share times ``n``), and what is left at the end
joins the last group. Numeric bins are pooled with their neighbours (the order of values
stays); categories from the most to the least frequent, so frequent ones stay alone and rare
ones are pooled. A categorical feature's unseen bucket is never pooled: the baseline has none
of it, so it expects nothing, and it is the bucket a new category shows in.

Pooling only loses detail: by the data-processing inequality a divergence (PSI is the
symmetric Kullback-Leibler one) on pooled bins is at most the one on the bins they pool, so a
pooled value does not overstate drift. With two groups or more the window has a value; below
that it needs ``needed`` observations.

>>> shares = np.full(10, 0.1)  # ten deciles
>>> groups(shares, n=200, per_bin=50.0)
[[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
>>> groups(shares, n=99, per_bin=50.0), needed(shares, per_bin=50.0)
([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]], 100)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Float sums of shares such as ten times 0.1 fall just short of a whole; this much is equal.
SLACK = 1e-9


def groups(
    shares: np.ndarray, n: int, per_bin: float, order: Sequence[int] = ()
) -> list[list[int]]:
    """Bins (indexes into ``shares``, taken in ``order``: by default as they are) pooled so
    that each group's share of ``n`` observations is at least ``per_bin``."""
    out: list[list[int]] = []
    current: list[int] = []
    expected = 0.0
    for i in order if len(order) else range(shares.size):
        current.append(int(i))
        expected += float(shares[i]) * n
        if expected >= per_bin - SLACK:
            out.append(current)
            current, expected = [], 0.0
    if current:
        if out:
            out[-1].extend(current)
        else:
            out.append(current)
    return out


def needed(shares: np.ndarray, per_bin: float, order: Sequence[int] = ()) -> int:
    """The fewest observations for which ``groups`` makes two groups or more.

    Two groups need a cut with at least ``per_bin / n`` of the share on each side; the best
    cut is the one whose smaller side is largest."""
    ordered = shares[list(order)] if len(order) else shares
    before = np.cumsum(ordered)[:-1]
    if not before.size:
        return 0  # a single bin never makes two groups
    smaller = float(np.max(np.minimum(before, ordered.sum() - before)))
    if smaller <= 0:
        return 0
    return max(1, math.ceil(per_bin / smaller - SLACK))
