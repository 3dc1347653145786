"""Paired outcomes of the champion and each challenger on the same joined events.

A release decision needs a paired test, not two accuracies: McNemar's on the discordant pairs
(classification) or a test on the mean of per-event error differences (regression). A pair is
one association id with the champion's prediction, a challenger's and the actual; it is counted
once, when the last of the three arrives, from the joiner's rows (``services.drift.join``):

- a challenger's row whose ``others`` hold the champion's prediction (the actual came last, or
  the challenger's prediction did);
- a champion's row formed by its prediction (``by_actual`` False), once per challenger in its
  ``others`` (the champion's prediction came last).

>>> from services.drift.join import Joiner
>>> j = Joiner({})
>>> j.prediction("k", "champion", ["1", None, 10, 1, True, 0])
[]
>>> pairs(j.actual("k", "1", 20), "champion", ["challenger"])  # the challenger's is missing
[]
>>> rows = j.prediction("k", "challenger", ["0", None, 10, 1, False, None])
>>> pairs(rows, "champion", ["challenger"])  # (challenger, champion's, challenger's, actual)
[('challenger', '1', '0', '1')]
>>> o = PairedOutcomes()
>>> o.add_answers(champion_right=True, challenger_right=False)
>>> o.add_values(champion=3.5, challenger=1.0, actual=3.0)
>>> o.state()
[2, 1, 0, 1.5, 2.25]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from services.drift.join import TAG, Joined

Pair = tuple[str, Any, Any, Any]  # (challenger id, champion's prediction, challenger's, actual)


def pairs(rows: Iterable[Joined], champion: str, challengers: Iterable[str]) -> list[Pair]:
    """The pairs the rows complete, for the champion and challengers given by full id (a
    model outside them never pairs). Rows of duplicates never reach here: the joiner drops
    them."""
    ours = champion[:TAG]
    theirs = {c[:TAG]: c for c in challengers if c[:TAG] != ours}
    out: list[Pair] = []
    if not theirs:
        return out
    for r in rows:
        tag = r.model_id[:TAG]
        if tag in theirs:
            if ours in r.others:
                out.append((theirs[tag], r.others[ours], r.prediction, r.label))
        elif tag == ours and not r.by_actual:
            mine = r.prediction
            out += [(theirs[t], mine, y, r.label) for t, y in r.others.items() if t in theirs]
    return out


@dataclass
class PairedOutcomes:
    """Counts of one challenger's pairs with the champion in a window.

    Classification counts the discordant pairs, ``champion_only`` (the champion right, the
    challenger wrong) and ``challenger_only``; regression sums d = |challenger error| -
    |champion error| and d squared, so that windows add up to a mean and a variance.
    """

    n: int = 0
    champion_only: int = 0
    challenger_only: int = 0
    diff_sum: float = 0.0
    diff_sq_sum: float = 0.0

    def add_answers(self, champion_right: bool, challenger_right: bool) -> None:
        """Add a classification pair: whether each model answered the actual."""
        self.n += 1
        self.champion_only += champion_right and not challenger_right
        self.challenger_only += challenger_right and not champion_right

    def add_values(self, champion: Any, challenger: Any, actual: float) -> None:
        """Add a regression pair: the models' predicted values and the actual one. A pair
        missing a prediction (None, NaN) is left out, as accuracy leaves out such a row."""
        if champion is None or challenger is None:
            return
        d = abs(float(challenger) - actual) - abs(float(champion) - actual)
        if math.isnan(d):
            return
        self.n += 1
        self.diff_sum += d
        self.diff_sq_sum += d * d

    def merge(self, other: PairedOutcomes) -> None:
        """Add another part of the same window (sharded drift)."""
        self.n += other.n
        self.champion_only += other.champion_only
        self.challenger_only += other.challenger_only
        self.diff_sum += other.diff_sum
        self.diff_sq_sum += other.diff_sq_sum

    def state(self) -> list[Any]:
        """The counts, JSON-able: [n, champion_only, challenger_only, diff_sum, diff_sq_sum]."""
        return [self.n, self.champion_only, self.challenger_only, self.diff_sum, self.diff_sq_sum]

    @classmethod
    def from_state(cls, state: Sequence[Any]) -> Self:
        """Rebuild from a ``state()``."""
        n, champion_only, challenger_only, diff_sum, diff_sq_sum = state
        return cls(int(n), int(champion_only), int(challenger_only), diff_sum, diff_sq_sum)
