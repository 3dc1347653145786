"""Issue 27's hostile JSON through the shared decode path: refused with a reason, never raised.

Each input used to escape ``json_input`` as RecursionError, ValueError or OverflowError, or to
pass with a time no long can hold; now each is a PoisonMessage naming the field.
"""

from __future__ import annotations

import pytest

from services.common import serde
from services.common.errors import PoisonMessage, Reason
from services.common.json_input import EARLIEST_MS, LATEST_MS, from_json
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from tests.fuzz_cases import HOSTILE_ACTUALS, HOSTILE_EVENTS, deep_json

pytestmark = pytest.mark.unit

NAMER = TopicNamer("hostile.")
DECODE = TopicDecoder(NAMER)


@pytest.mark.parametrize("name", sorted(HOSTILE_EVENTS))
def test_hostile_json_events_are_refused_with_their_reason(name):
    data, reason = HOSTILE_EVENTS[name]
    with pytest.raises(PoisonMessage) as refused:
        DECODE(NAMER.events, data)
    assert refused.value.reason is reason
    if "time" in name:
        assert "event_time" in refused.value.detail


@pytest.mark.parametrize("name", sorted(HOSTILE_ACTUALS))
def test_hostile_json_actuals_are_refused_with_their_reason(name):
    data, reason = HOSTILE_ACTUALS[name]
    with pytest.raises(PoisonMessage) as refused:
        DECODE(NAMER.actuals, data)
    assert refused.value.reason is reason
    if "time" in name:
        assert "actual_time" in refused.value.detail


def test_the_issue_deep_nesting_is_invalid_json_when_it_reaches_the_parser():
    """The 100,000-deep document of the issue, past the size check (``from_json`` itself)."""
    data = b'{"association_id":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for record in ("FeatureEvent", "Actual"):
        with pytest.raises(PoisonMessage) as refused:
            from_json(record, data)
        assert refused.value.reason is Reason.INVALID_JSON
        assert "recursion" in refused.value.detail


def test_nesting_the_parser_takes_is_still_refused_as_the_wrong_type():
    with pytest.raises(PoisonMessage) as refused:
        DECODE(NAMER.events, deep_json("association_id", 50))
    assert refused.value.reason is Reason.WRONG_TYPE


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("NaN", Reason.NON_FINITE),
        ("-Infinity", Reason.NON_FINITE),
        ("1e30", Reason.OUT_OF_RANGE),
        ("-1e30", Reason.OUT_OF_RANGE),
        (str(LATEST_MS + 1), Reason.OUT_OF_RANGE),
        (str(EARLIEST_MS - 1), Reason.OUT_OF_RANGE),
        ("1" + "0" * 400, Reason.OUT_OF_RANGE),
        ('"9999-12-31T23:59:59-23:59"', Reason.OUT_OF_RANGE),  # past year 9999 in UTC
        ('"not a date"', Reason.WRONG_TYPE),
    ],
)
def test_times_outside_iso_8601_years_are_refused(time, reason):
    data = (
        f'{{"association_id":"a","deployment":"d","event_time":{time},"features":{{}}}}'
    ).encode()
    with pytest.raises(PoisonMessage) as refused:
        serde.decode(data, expected="FeatureEvent", allow_json=True)
    assert refused.value.reason is reason and "event_time" in refused.value.detail


@pytest.mark.parametrize(
    ("time", "millis"),
    [
        (str(EARLIEST_MS), EARLIEST_MS),
        (str(LATEST_MS), LATEST_MS),
        ('"0001-01-01T00:00:00Z"', EARLIEST_MS),
        ('"9999-12-31T23:59:59.999Z"', LATEST_MS),
        ("1.7e12", 1_700_000_000_000),
        ("-5", -5),
    ],
)
def test_times_at_the_bounds_are_accepted(time, millis):
    data = f'{{"association_id":"a","deployment":"d","label":1,"actual_time":{time}}}'.encode()
    assert serde.decode(data, expected="Actual", allow_json=True)[1]["actual_time"] == millis


@pytest.mark.parametrize(
    "field",
    [
        '"association_id":"\\udc80","deployment":"d"',
        '"association_id":"a","deployment":"\\ud800x"',
        '"association_id":"a","deployment":"d","attributes":{"k":"\\ud800"}',
        '"association_id":"a","deployment":"d","features":{"\\ud800":1}',
        '"association_id":"a","deployment":"d","features":{"c":"\\udfff"}',
    ],
)
def test_strings_no_utf8_encoder_takes_are_refused(field):
    text = "{" + field + (',"features":{}' if "features" not in field else "") + "}"
    with pytest.raises(PoisonMessage) as refused:
        DECODE(NAMER.events, text.encode())
    assert refused.value.reason is Reason.WRONG_TYPE and "Unicode" in refused.value.detail
