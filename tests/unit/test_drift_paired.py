"""Paired outcomes of champion and challengers: each pair counted once, in any arrival order."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import json

import pytest

from services.common import serde
from services.drift import paired as paired_module
from services.drift.aggregate import WindowAggregate
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.paired import pairs
from services.drift.reference import ReferenceBook
from services.drift.report import drift_report
from tests.drift_support import T0, champion_reference, content, model_record, numeric_baseline

pytestmark = pytest.mark.unit

CHAMP = content("c" * 64, 1, [numeric_baseline("x")])
CHALL = content("d" * 64, 2, [numeric_baseline("x")])
RETIRED = content("e" * 64, 3, [numeric_baseline("x")])  # predictions left in entries; no role
# (champion's label, challenger's label, actual) per association id.
CASES = {
    "a0": ("1", "1", "1"),  # both right
    "a1": ("1", "0", "1"),  # champion only
    "a2": ("0", "1", "1"),  # challenger only
    "a3": ("0", "0", "1"),  # both wrong
    "a4": ("1", "0", "0"),  # challenger only
}
EXPECTED = [5, 1, 2, 0.0, 0.0]  # PairedOutcomes.state()


def _ids(*contents: dict):
    book = ReferenceBook()
    for c in contents:
        book.apply(model_record(c))
    return book.model_id


def _monitor(task: str = "classification") -> DeploymentMonitor:
    ref = champion_reference(CHAMP, challengers=[CHALL])
    if task == "regression":
        ref = dataclasses.replace(ref, task="regression", classes=())
    return DeploymentMonitor(ref, MonitorConfig(window_count=100, lateness_ms=0))


def _prediction(key: str, c: dict, y: object, served: bool) -> dict:
    return {
        "association_id": key,
        "deployment": "d",
        "model_name": c["name"],
        "model_version": c["version"],
        "model_id": c["model_id"],
        "role": "champion" if served else "challenger",
        "served": served,
        "prediction": y,
        "probabilities": {},
        "humility": [],
        "overridden": False,
        "event_time": T0,
        "scored_time": T0 + 1,
        "input_partition": 0,
        "input_offset": 0,
    }


class Feed:
    """Arrivals into a monitor through a joiner; ``batches``: a new joiner per arrival, on the
    entries the previous ones wrote, as the drift loop reads them back from Redis."""

    def __init__(self, monitor: DeploymentMonitor, batches: bool) -> None:
        self.monitor, self.batches = monitor, batches
        self.store: dict[str, str] = {}
        self.ids = _ids(CHAMP, CHALL, RETIRED)
        self.joiner = Joiner({}, self.ids)

    def _next(self) -> Joiner:
        if self.batches:
            self.store |= {k: v for k, v, _new in self.joiner.writes()}
            self.joiner = Joiner(dict(self.store), self.ids)
        return self.joiner

    def predictions(self, c: dict, column: int, served: bool) -> None:
        j = self._next()
        rows = [_prediction(k, c, case[column], served) for k, case in CASES.items()]
        self.monitor.add_predictions(rows, list(CASES), j)

    def actuals(self, label_of=lambda case: case[2]) -> None:
        j = self._next()
        joined = [j.actual(k, label_of(case), T0 + 10) for k, case in CASES.items()]
        self.monitor.add_joined([r for rows in joined for r in rows or []])

    def arrive(self, what: str) -> None:
        if what == "champion":
            self.predictions(CHAMP, 0, served=True)
        elif what == "challenger":
            self.predictions(CHALL, 1, served=False)
        elif what == "retired":
            self.predictions(RETIRED, 1, served=False)
        else:
            self.actuals()


def _paired(monitor: DeploymentMonitor) -> dict[str, list]:
    return {m: o.state() for m, o in monitor.windows.newest().aggregate.paired.items()}


@pytest.mark.parametrize("batches", [False, True], ids=["one joiner", "joiner per batch"])
@pytest.mark.parametrize(
    "order", list(itertools.permutations(["champion", "challenger", "actual"])), ids="-".join
)
def test_every_arrival_order_counts_each_pair_once(order, batches):
    feed = Feed(_monitor(), batches)
    for what in order:
        feed.arrive(what)
    assert _paired(feed.monitor) == {CHALL["model_id"]: EXPECTED}
    # Replays and duplicates: a scorer batch again, a second actual with another label.
    feed.arrive("champion")
    feed.arrive("challenger")
    feed.actuals(label_of=lambda case: "0" if case[2] == "1" else "1")
    assert _paired(feed.monitor) == {CHALL["model_id"]: EXPECTED}


@pytest.mark.parametrize("first", ["champion", "actual"])
def test_a_model_outside_the_reference_never_pairs(first):
    feed = Feed(_monitor(), batches=True)
    for what in (first, "retired", "actual" if first == "champion" else "champion"):
        feed.arrive(what)
    assert _paired(feed.monitor) == {}
    feed.arrive("challenger")
    assert _paired(feed.monitor) == {CHALL["model_id"]: EXPECTED}


def test_the_rule_reads_only_the_last_arrival_of_the_three():
    champ, chall = CHAMP["model_id"], CHALL["model_id"]
    j = Joiner({}, _ids(CHAMP, CHALL))
    assert j.actual("k", "1", 20) == []
    first = j.prediction("k", chall, ["0", None, 10, 2, False, None])
    assert [(r.others, r.by_actual) for r in first] == [({}, False)]
    assert pairs(first, champ, [chall]) == []
    (last,) = j.prediction("k", champ, ["1", 0.9, 10, 1, True, 0])
    assert (last.others, last.by_actual) == ({chall[:16]: "0"}, False)
    assert pairs([last], champ, [chall]) == [(chall, "1", "0", "1")]
    assert pairs([last], champ, []) == [], "no challenger in the reference"
    j.prediction("m", champ, ["1", 0.9, 10, 1, True, 0])
    j.prediction("m", chall, ["1", None, 10, 2, False, None])
    by_champion, by_challenger = j.actual("m", "0", 20)  # rows in model id order
    assert (by_champion.model_id, by_champion.by_actual) == (champ, True)
    assert pairs([by_champion], champ, [chall]) == [], "counted from the challenger's row"
    assert pairs([by_challenger], champ, [chall]) == [(chall, "1", "1", "0")]


def test_regression_sums_the_differences_of_absolute_errors():
    monitor = _monitor("regression")
    champ, chall = CHAMP["model_id"], CHALL["model_id"]
    j = Joiner({}, _ids(CHAMP, CHALL))
    # (champion, challenger, actual): d = |challenger error| - |champion error|
    cases = [(12.0, 9.0, 10.0), (1.0, -4.0, 0.0), (None, 5.0, 5.0), (2.5, 2.5, 0.0)]
    for i, (c, x, a) in enumerate(cases):
        j.prediction(f"k{i}", champ, [c, None, T0, 1, True, None])
        monitor.add_joined(j.actual(f"k{i}", a, T0 + 1))
        monitor.add_joined(j.prediction(f"k{i}", chall, [x, None, T0, 2, False, None]))
    (outcomes,) = monitor.windows.newest().aggregate.paired.values()
    # d: -1, 3, (no champion value: left out), 0
    assert outcomes.state() == [3, 0, 0, 2.0, 10.0]


def _window_with_pairs(extra: int) -> WindowAggregate:
    feed = Feed(_monitor(), batches=False)
    for what in ("champion", "challenger", "actual"):
        feed.arrive(what)
    agg = feed.monitor.windows.newest().aggregate
    (outcomes,) = agg.paired.values()
    outcomes.n += extra  # tells the two windows apart
    return agg


def test_paired_outcomes_survive_a_state_round_trip_and_merges_add_up():
    first, second = _window_with_pairs(0), _window_with_pairs(1)
    ref = first.reference
    back = WindowAggregate.from_state(ref, json.loads(json.dumps(first.state())))
    assert {m: o.state() for m, o in back.paired.items()} == {CHALL["model_id"]: EXPECTED}
    back.merge(WindowAggregate.from_state(ref, second.state()))
    assert back.paired[CHALL["model_id"]].state() == [11, 2, 4, 0.0, 0.0]
    old = first.state()
    del old["paired"]  # a state stored before paired outcomes were counted
    assert WindowAggregate.from_state(ref, old).paired == {}
    alone = WindowAggregate.from_state(ref, old)
    alone.merge(second)  # a part with pairs into one without
    assert alone.paired[CHALL["model_id"]].state() == [6, 1, 2, 0.0, 0.0]


def test_the_report_carries_paired_outcomes_and_encodes_with_the_schema():
    feed = Feed(_monitor(), batches=False)
    for what in ("champion", "challenger", "actual"):
        feed.arrive(what)
    ref = feed.monitor.reference
    record = drift_report(ref, feed.monitor.windows.newest().aggregate.figures())
    (challenger,) = record["challengers"]
    assert challenger["model_version"] == 2
    assert challenger["paired"] == {
        "n": 5,
        "champion_only": 1,
        "challenger_only": 2,
        "diff_sum": 0.0,
        "diff_sq_sum": 0.0,
    }
    _, back = serde.decode(serde.encode("DriftReport", record), expected="DriftReport")
    assert back == record


def test_a_challenger_without_a_pair_reports_null_and_one_with_only_pairs_is_listed():
    monitor = DeploymentMonitor(
        champion_reference(CHAMP, challengers=[CHALL]), MonitorConfig(window_count=1)
    )
    champ, chall = CHAMP["model_id"], CHALL["model_id"]
    j = Joiner({}, _ids(CHAMP, CHALL))
    j.prediction("k", chall, ["1", None, T0, 2, False, None])
    monitor.add_joined(j.actual("k", "1", T0 + 1))  # the challenger's row: no champion yet
    earlier = monitor.windows.newest().aggregate.figures()
    (c,) = drift_report(monitor.reference, earlier)["challengers"]
    assert (c["model_version"], c["paired"]) == (2, None)
    monitor.add_events([{"event_time": T0, "features": {"x": 0.0}}])
    monitor.close_due()
    monitor.add_joined(j.prediction("k", champ, ["0", None, T0, 1, True, None]))
    later = monitor.windows.newest().aggregate.figures()
    assert later.seq != earlier.seq
    (c,) = drift_report(monitor.reference, later)["challengers"]
    # The challenger's row joined in the earlier window: here only its pair, version unknown.
    assert (c["model_id"], c["model_version"], c["metrics"]) == (chall, 0, {})
    assert c["paired"]["n"] == 1 and c["paired"]["challenger_only"] == 1
    serde.encode("DriftReport", drift_report(monitor.reference, later))


def test_docstring_examples():
    result = doctest.testmod(paired_module)
    assert result.attempted > 0 and result.failed == 0
