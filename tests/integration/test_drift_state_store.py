"""The drift state store on the real Redis: one script per batch, sent now and settled later.

What R11 rests on, checked directly: a transaction writes state, summaries, join entries and
offsets together; a second write does not overwrite the first prediction or actual; a rolled
back Redis is noticed before anything is written; a transaction in flight is settled before the
next one is sent, so they land in order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.common.errors import RetryableError
from services.drift.join_store import JoinStore
from services.drift.redis_line import RedisLine
from services.drift.state_store import ClosedSummary, StateRolledBack, StateStore

pytestmark = pytest.mark.integration


@pytest.fixture()
def namespace(redis_client: Any) -> Iterator[str]:
    ns = f"streamops:drift:test-{uuid.uuid4().hex[:8]}"
    yield ns
    keys = list(redis_client.scan_iter(match=f"{ns}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


def test_one_transaction_writes_state_summaries_joins_and_offsets(redis_client, namespace):
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace, history=2)
    joins = JoinStore(line, namespace, 60)
    key = joins.key("credit", "a-1")
    write = store.prepare(
        {"credit": {"model_id": "m", "windows": [1, 2]}},
        {("events", 0): 11, ("predictions", 2): 7},
        [ClosedSummary("credit", 0, {"events": 5})],
        joins.staged([(key, '{"p:m":{"y":"1"}}', True)]),
    )
    store.send(write)
    assert store.expected == 0, "counted before its reply was read"
    store.settle()
    assert store.expected == 1
    snap = store.load()
    assert snap.monitors == {"credit": {"model_id": "m", "windows": [1, 2]}}
    assert snap.offsets == {("events", 0): 11, ("predictions", 2): 7}
    assert store.closed("credit") == {0: {"events": 5}}
    assert redis_client.get(key) == b'{"p:m":{"y":"1"}}'
    assert 0 < redis_client.ttl(key) <= 60


def test_join_entries_are_created_once_with_a_ttl_then_replaced_keeping_it(redis_client, namespace):
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace, history=2)
    joins = JoinStore(line, namespace, 60)
    key, gone = joins.key("credit", "a-1"), joins.key("credit", "expired")
    writes = [
        [(key, '{"a":1}', True)],
        [(key, '{"a":2}', True)],  # "new" again (it cannot be): the first entry stays
        [(key, '{"a":3}', False), (gone, '{"a":4}', False)],  # replaced; a missing one not made
    ]
    for seq, batch in enumerate(writes):
        if seq == 2:
            redis_client.expire(key, 30)
        store.write(
            store.prepare(
                {},
                {("events", 0): seq + 1},
                [ClosedSummary("credit", seq, {"seq": seq})],
                joins.staged(batch),
            )
        )
        if seq == 1:
            assert redis_client.get(key) == b'{"a":1}'
    assert redis_client.get(key) == b'{"a":3}'
    assert 0 < redis_client.ttl(key) <= 30, "the replacement kept the entry's TTL"
    assert not redis_client.exists(gone), "no entry is ever made without a TTL"
    joins.forget()  # read what Redis holds, without the last staged entries laid over it
    assert joins.fetch([key, joins.key("credit", "unknown")]) == {key: b'{"a":3}'}
    assert sorted(store.closed("credit")) == [1, 2], "only the newest `history` summaries stay"
    assert store.load().offsets == {("events", 0): 3}


def test_a_read_sent_ahead_of_the_last_transaction_finds_the_entries_it_writes(
    redis_client, namespace
):
    """The drift loop sends a batch's join read before the previous batch's transaction."""
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace)
    joins = JoinStore(line, namespace, 60)
    old, new, other = (joins.key("credit", i) for i in ("old", "new", "other"))
    store.write(store.prepare({}, {("events", 0): 1}, [], joins.staged([(old, '{"a":1}', True)])))
    held = store.prepare(
        {}, {("events", 0): 2}, [], joins.staged([(new, '{"a":2}', True), (old, '{"a":3}', False)])
    )
    fetch = joins.request([old, new, other])  # sent before the transaction that writes them
    store.send(held)
    assert fetch.entries() == {old: '{"a":3}', new: '{"a":2}'}
    store.settle()
    assert redis_client.get(new) == b'{"a":2}' and redis_client.get(old) == b'{"a":3}'
    joins.forget()
    assert joins.fetch([old, new, other]) == {old: b'{"a":3}', new: b'{"a":2}'}
    assert joins.fetch([]) == {}


def test_a_read_of_thousands_of_ids_finds_exactly_the_entries_that_exist(redis_client, namespace):
    """One MGET for a batch's ids, each read once, missing ones left out."""
    line = RedisLine(redis_client)
    joins = JoinStore(line, namespace, 60)
    keys = [joins.key("credit", f"id-{i}") for i in range(2600)]
    present = {0, 999, 1000, 1001, 1999, 2000, 2599}
    for i in present:
        redis_client.set(keys[i], f"entry {i}")
    want = {keys[i]: f"entry {i}".encode() for i in present}
    assert joins.fetch(keys + keys[:3]) == want  # a repeated id is read once
    assert joins.fetch([]) == {}


def test_a_rolled_back_redis_is_noticed_and_nothing_is_written(redis_client, namespace):
    store = StateStore(redis_client, RedisLine(redis_client), namespace)
    store.write(store.prepare({"credit": {"v": 1}}, {("events", 0): 1}))
    store.write(store.prepare({"credit": {"v": 2}}, {("events", 0): 2}))
    redis_client.set(f"{namespace}:commits", 1)  # Redis restarted and lost the last commit
    store.send(store.prepare({"credit": {"v": 3}}, {("events", 0): 3}))
    with pytest.raises(StateRolledBack, match="Redis holds 1 commits, this process made 2"):
        store.settle()
    assert json.loads(redis_client.get(f"{namespace}:monitor:credit")) == {"v": 2}
    assert store.load().offsets == {("events", 0): 2}
    store.write(store.prepare({"credit": {"v": 3}}, {("events", 0): 3}))  # after the reload
    assert store.load().offsets == {("events", 0): 3}


def test_a_second_send_settles_the_first_and_transactions_land_in_order(redis_client, namespace):
    store = StateStore(redis_client, RedisLine(redis_client), namespace)
    store.send(store.prepare({"credit": {"v": 1}}, {("events", 0): 1}))
    store.send(store.prepare({"credit": {"v": 2}}, {("events", 0): 2}))
    assert store.expected == 1, "the first transaction was settled by the second send"
    store.settle()
    store.settle()  # nothing in flight: a no-op
    assert store.expected == 2
    assert int(redis_client.get(f"{namespace}:commits")) == 2
    assert json.loads(redis_client.get(f"{namespace}:monitor:credit")) == {"v": 2}


def test_an_unreachable_redis_is_a_retryable_error(redis_client, namespace):
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    store = StateStore(dead, RedisLine(dead), namespace)
    with pytest.raises(RetryableError, match="state commit failed"):
        store.write(store.prepare({}, {("events", 0): 1}))


def test_a_line_reads_replies_in_order_and_a_read_behind_a_write_sees_it(redis_client, namespace):
    import redis

    line = RedisLine(redis_client)
    key = f"{namespace}:x"
    wrote = line.send("SET", key, "1")
    failed = line.send("EVAL", "return redis.error_reply('NOPE')", 0)
    read = line.send("GET", key)  # sent before the SET's reply was read
    assert line.reply(wrote) == b"OK"
    with pytest.raises(redis.ResponseError, match="NOPE"):
        line.reply(failed)
    assert line.reply(read) == b"1"
    first, second = line.send("GET", key), line.send("GET", key)
    assert line.reply(second) == b"1"
    with pytest.raises(redis.ConnectionError):  # asked out of order: the older one was dropped
        line.reply(first)


def test_a_broken_line_fails_what_was_in_flight_and_reconnects(redis_client, namespace):
    import redis

    line = RedisLine(redis_client)
    assert line.reply(line.send("CLIENT", "SETNAME", "line-under-test")) == b"OK"
    (killed,) = [c for c in redis_client.client_list() if c.get("name") == "line-under-test"]
    redis_client.client_kill_filter(_id=killed["id"])
    with pytest.raises(redis.ConnectionError):  # from the send or from the reply
        line.reply(line.send("GET", f"{namespace}:x"))
    assert line.reply(line.send("PING")) == b"PONG"  # a fresh connection
