"""The drift state store on the real Redis: one script per batch, sent now and settled later.

What R11 rests on, checked directly: a transaction writes state, summaries, join entries and
offsets together; join entries live in generations that expire; a rolled
back Redis is noticed before anything is written; a transaction in flight is settled before the
next one is sent, so they land in order.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from services.common.errors import RetryableError
from services.drift.join_store import JoinStore
from services.drift.redis_line import RedisLine
from services.drift.state_store import ClosedSummary, StateRolledBack, StateStore

pytestmark = pytest.mark.integration


@pytest.fixture()
def namespace(drift_group: str) -> str:
    """A group's namespace; ``drift_group`` deletes its keys after the test."""
    return f"streamops:drift:{drift_group}"


class Clock:
    """A wall clock the test moves (expiries are Unix times, so it starts at the real time)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 30 * 30)  # the start of a 30 s generation

    def __call__(self) -> float:
        return self.now


def test_one_transaction_writes_state_summaries_joins_and_offsets(redis_client, namespace):
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace, history=2)
    clock = Clock()
    joins = JoinStore(line, namespace, 60, clock)
    write = store.prepare(
        {"credit": {"model_id": "m", "windows": [1, 2]}},
        {("events", 0): 11, ("predictions", 2): 7},
        [ClosedSummary("credit", 0, {"events": 5})],
        joins.staged([(("credit", "a-1"), '{"p:m":{"y":"1"}}', True)]),
    )
    store.send(write)
    assert store.expected == 0, "counted before its reply was read"
    store.settle()
    assert store.expected == 1
    snap = store.load()
    assert snap.monitors == {"credit": {"model_id": "m", "windows": [1, 2]}}
    assert snap.offsets == {("events", 0): 11, ("predictions", 2): 7}
    assert store.closed("credit") == {0: {"events": 5}}
    generation = joins.hash_key("credit", int(clock.now) // 30)
    assert redis_client.hgetall(generation) == {b"a-1": b'{"p:m":{"y":"1"}}'}
    assert 60 < redis_client.ttl(generation) <= 90, "the generation's end plus the TTL"


def test_join_entries_stay_in_the_generation_they_were_found_in(redis_client, namespace):
    """New entries go into the current generation (half the TTL long), found ones back into
    theirs; a generation is read while it lives, and no hash is ever left without an expiry."""
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace, history=2)
    clock = Clock()
    joins = JoinStore(line, namespace, 60, clock)
    first, second = ("credit", "a-1"), ("credit", "a-2")
    g0, g1 = (joins.hash_key("credit", int(clock.now) // 30 + i) for i in (0, 1))

    def commit(seq: int, writes: list[tuple[Any, str, bool]]) -> None:
        store.write(
            store.prepare(
                {}, {("events", 0): seq}, [ClosedSummary("credit", seq, {})], joins.staged(writes)
            )
        )

    commit(1, [(first, '{"a":1}', True)])
    clock.now += 30  # the next generation
    joins.forget()  # read what Redis holds, without the last staged entries laid over it
    assert joins.fetch([first, second]) == {first: b'{"a":1}'}
    commit(2, [(first, '{"a":2}', False), (second, '{"a":3}', True)])
    assert redis_client.hgetall(g0) == {b"a-1": b'{"a":2}'}, "found: written back where it was"
    assert redis_client.hgetall(g1) == {b"a-2": b'{"a":3}'}, "new: the current generation"
    assert 90 < redis_client.ttl(g1) <= 120
    joins.forget()
    assert joins.fetch([first, second]) == {first: b'{"a":2}', second: b'{"a":3}'}
    clock.now += 60  # g0 ended 60 s ago: its entries are past the TTL and no longer read
    assert joins.fetch([first, second]) == {second: b'{"a":3}'}
    clock.now -= 1000  # a write stamped with a generation long over expires at once
    commit(3, [(("credit", "old"), '{"a":4}', True)])
    assert not redis_client.exists(joins.hash_key("credit", int(clock.now) // 30))
    assert sorted(store.closed("credit")) == [2, 3], "only the newest `history` summaries stay"
    assert store.load().offsets == {("events", 0): 3}


def test_a_deployments_label_delay_keeps_its_entries_that_long(redis_client, namespace):
    """A deployment with a label delay longer than the service's TTL keeps its entries (and reads
    them) that long; generations are the same length for every delay, so entries written before
    the delay changed are still found."""
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace)
    clock = Clock()
    delays: dict[str, int | None] = {"slow": 300, "fast": None}
    joins = JoinStore(line, namespace, 60, clock, label_delay=delays.get)
    slow, fast = ("slow", "a-1"), ("fast", "a-1")
    writes = joins.staged([(slow, '{"a":1}', True), (fast, '{"a":2}', True)])
    store.write(store.prepare({}, {("events", 0): 1}, [], writes))
    generation = int(clock.now) // 30
    assert 300 < redis_client.ttl(joins.hash_key("slow", generation)) <= 330
    assert 60 < redis_client.ttl(joins.hash_key("fast", generation)) <= 90
    joins.forget()
    clock.now += 200  # past the service's TTL, inside the slow deployment's label delay
    assert joins.fetch([slow, fast]) == {slow: b'{"a":1}'}
    delays["slow"] = None  # the delay shortened: its entries are past the TTL now
    assert joins.fetch([slow]) == {}
    delays["slow"] = 600  # lengthened again: the same generations, read for longer
    assert joins.fetch([slow]) == {slow: b'{"a":1}'}


def test_a_read_sent_ahead_of_the_last_transaction_finds_the_entries_it_writes(
    redis_client, namespace
):
    """The drift loop sends a batch's join read before the previous batch's transaction."""
    line = RedisLine(redis_client)
    store = StateStore(redis_client, line, namespace)
    clock = Clock()
    joins = JoinStore(line, namespace, 60, clock)
    old, new, other = (("credit", i) for i in ("old", "new", "other"))
    store.write(store.prepare({}, {("events", 0): 1}, [], joins.staged([(old, '{"a":1}', True)])))
    held = store.prepare(
        {}, {("events", 0): 2}, [], joins.staged([(new, '{"a":2}', True), (old, '{"a":3}', False)])
    )
    fetch = joins.request([old, new, other])  # sent before the transaction that writes them
    store.send(held)
    assert fetch.entries() == {old: '{"a":3}', new: '{"a":2}'}
    store.settle()
    generation = joins.hash_key("credit", int(clock.now) // 30)
    assert redis_client.hgetall(generation) == {b"old": b'{"a":3}', b"new": b'{"a":2}'}
    joins.forget()
    assert joins.fetch([old, new, other]) == {old: b'{"a":3}', new: b'{"a":2}'}
    assert joins.fetch([]) == {}


def test_a_read_of_thousands_of_ids_finds_exactly_the_entries_that_exist(redis_client, namespace):
    """One HMGET per live generation for a batch's ids, each read once, missing ones left out;
    an id in two generations (which the store never writes) reads as the newer one's."""
    line = RedisLine(redis_client)
    clock = Clock()
    joins = JoinStore(line, namespace, 60, clock)
    keys = [("credit", f"id-{i}") for i in range(2600)]
    older, newer = present = {0: {0, 999, 1000, 2599}, 1: {1001, 1999, 2000, 2599}}.values()
    for step, ids in enumerate(present):
        generation = joins.hash_key("credit", int(clock.now) // 30 + step)
        redis_client.hset(generation, mapping={f"id-{i}": f"entry {step} {i}" for i in ids})
        redis_client.expire(generation, 300)
    clock.now += 30
    want = {keys[i]: f"entry 0 {i}".encode() for i in older}
    want |= {keys[i]: f"entry 1 {i}".encode() for i in newer}
    assert joins.fetch(keys + keys[:3]) == want  # a repeated id is read once
    assert joins.fetch([("other", "id-0")]) == {}
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
