"""Dead letters counted by source record: one bad event refused by two services is one record."""

from __future__ import annotations

import doctest

import pytest

from services.cli import deadletters_cmd
from services.common import refused_sources
from services.common.errors import ConfigError
from services.common.refused_sources import counts, group, summary
from services.registry.live import LiveStats

pytestmark = pytest.mark.unit


def _letter(partition: int, offset: int, service: str, reason: str = "not_avro", **kw):
    return {
        "source_topic": kw.pop("topic", "p.events"),
        "source_partition": partition,
        "source_offset": offset,
        "source_key": b"k",
        "service": service,
        "reason": reason,
        "stage": kw.pop("stage", "decode"),
        "failed_at": kw.pop("at", 1_000),
    }


@pytest.mark.parametrize("module", [refused_sources, deadletters_cmd])
def test_doctests(module):
    failed, attempted = doctest.testmod(module)
    assert attempted and failed == 0


def test_one_event_refused_by_scorer_and_drift_is_one_bad_record():
    letters = [
        _letter(0, 7, "scorer", at=10),
        _letter(0, 7, "drift", at=12),
        _letter(1, 7, "scorer", "wrong_type"),  # same offset, another partition: another record
        _letter(0, 9, "registry", "handler_failed", topic="p.deployments", stage="apply"),
        _letter(0, 9, "registry", "handler_failed", topic="p.deployments", stage="apply"),
    ]
    groups = group(letters)
    assert [g.source for g in groups] == [
        ("p.events", 0, 7),
        ("p.events", 1, 7),
        ("p.deployments", 0, 9),
    ]
    first = groups[0]
    assert first.services == {"scorer": "not_avro", "drift": "not_avro"}
    assert (first.letters, first.first_at, first.last_at, first.refused_by) == (
        2,
        10,
        12,
        "drift+scorer",
    )
    assert groups[2].letters == 2 and groups[2].services == {"registry": "handler_failed"}
    figures = counts(groups)
    assert figures["records"] == 3 and figures["letters"] == 5
    assert figures["by_services"] == {"drift+scorer": 1, "registry": 1, "scorer": 1}
    assert figures["by_reason"] == {"handler_failed": 1, "not_avro": 1, "wrong_type": 1}
    assert figures["summary"] == (
        "3 bad source records (1 by drift and scorer, 1 by registry, 1 by scorer; "
        "handler_failed, not_avro, wrong_type); 5 dead letters"
    )


def test_the_summary_of_nothing_and_of_one():
    assert summary([]) == "none"
    assert summary(group([_letter(0, 1, "scorer")])) == (
        "1 bad source record, refused by scorer (not_avro); 1 dead letter"
    )


def test_the_cli_view_lists_each_source_record_once_with_its_refusers():
    letters = [_letter(0, 7, "scorer"), _letter(0, 7, "drift"), _letter(2, 3, "drift")]
    lines = deadletters_cmd.render(group(letters * 2), limit=1)  # replayed: letters twice
    assert lines == [
        "... 1 older records not shown (--limit)",
        "p.events[2]@3  refused by drift (not_avro)  [2 letters]",
        "total: 2 bad source records (1 by drift, 1 by drift and scorer; not_avro); 6 dead letters",
    ]
    row = deadletters_cmd.as_json(group(letters)[0])
    assert row["refused_by"] == {"drift": "not_avro", "scorer": "not_avro"}
    assert (row["source_partition"], row["source_offset"], row["letters"]) == (0, 7, 2)


def test_since_takes_a_duration_and_refuses_anything_else():
    assert deadletters_cmd.since_ms("30s", now_ms=100_000) == 70_000
    assert deadletters_cmd.since_ms("1d", now_ms=86_400_000) == 0
    with pytest.raises(ConfigError):
        deadletters_cmd.since_ms("yesterday")


def test_live_rates_count_bad_records_not_letters():
    stats = LiveStats()
    stats.begin_round()
    for _ in range(90):
        stats.add_event("a", {"x": 1.0}, at_ms=1_000)
    for offset in range(10):  # ten bad events, each refused by two services
        for service in ("scorer", "drift"):
            stats.add_deadletter("a", service, "decode", "not_avro", 1_000, ("p.events", 0, offset))
    stats.end_round(2_000, {"events": 100.0, "deadletter": 20.0})
    point = stats.latest("a")
    assert point["deadletters_per_s"] == pytest.approx(20.0)  # letters, as written
    assert point["bad_records_per_s"] == pytest.approx(10.0)  # distinct source records
    assert point["deadletter_rate"] == pytest.approx(10.0 / 110.0)
    sources = stats.deadletter_sources(0)
    assert (sources["records"], sources["letters"]) == (10, 20)
    assert sources["by_services"] == {"drift+scorer": 10}
    assert sources["summary"].startswith("10 bad source records, refused by drift and scorer")


def test_a_refusal_seen_in_an_earlier_round_is_not_a_new_bad_record():
    stats = LiveStats()
    for service in ("scorer", "drift"):
        stats.begin_round()
        stats.add_event("a", {"x": 1.0}, at_ms=1_000)
        stats.add_deadletter("a", service, "handle", "handler_failed", 1_000, ("p.events", 0, 5))
        stats.end_round(2_000, {"events": 1.0, "deadletter": 1.0})
    first, second = stats.series("a")
    assert first["bad_records_per_s"] == pytest.approx(1.0)
    assert second["bad_records_per_s"] == 0.0 and second["error_rate"] == 0.0
    assert second["deadletters_per_s"] == pytest.approx(1.0)
