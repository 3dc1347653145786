"""R16: SIGTERM during poll and mid-stream: clean exit within 10 s, nothing lost on restart."""

from __future__ import annotations

import time
import uuid

import pytest

from services.common import serde
from services.common.admin import create_topic
from tests import kafka_login
from tests.kafka_support import (
    ServiceProcess,
    count,
    make_topics,
    produce,
    read_all,
    wait_caught_up,
)

pytestmark = pytest.mark.integration


def _relay(bootstrap: str, prefix: str, output: str, group: str, tmp_path, *extra: str):
    return ServiceProcess(
        "loadtest.relay",
        [
            "--prefix",
            prefix,
            "--output",
            output,
            "--group",
            group,
            "--bootstrap",
            bootstrap,
            *extra,
        ],
        tmp_path / "relay.log",
    )


def _wait_for_log(proc: ServiceProcess, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in proc.log_path.read_text(errors="replace"):
        assert proc.alive(), proc.log_tail()
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{proc.log_tail()}"
        time.sleep(0.1)


def test_r16_sigterm_during_poll_exits_cleanly_within_10s(kafka_bootstrap, prefix, tmp_path):
    make_topics(kafka_bootstrap, prefix, ["events", "deadletter"])
    output = f"{prefix}relayed"
    create_topic(kafka_login.conf(kafka_bootstrap), output, 1)
    proc = _relay(kafka_bootstrap, prefix, output, f"g-{uuid.uuid4().hex[:8]}", tmp_path).start()
    _wait_for_log(proc, "consuming")
    time.sleep(1.0)  # idle in poll
    code, seconds = proc.terminate(timeout_s=15)
    assert code == 0, proc.log_tail()
    assert seconds <= 10, f"took {seconds:.1f} s to stop"


def test_r16_sigterm_mid_stream_then_restart_loses_nothing(kafka_bootstrap, prefix, tmp_path):
    namer = make_topics(kafka_bootstrap, prefix, ["events", "deadletter"])
    output = f"{prefix}relayed"
    create_topic(kafka_login.conf(kafka_bootstrap), output, 6)
    ids = [f"e{i}" for i in range(3000)]
    produce(
        kafka_bootstrap,
        namer.events,
        [
            (
                aid,
                serde.encode(
                    "FeatureEvent",
                    {
                        "association_id": aid,
                        "deployment": "d",
                        "event_time": 1_700_000_000_000,
                        "features": {"x": 1.0},
                        "attributes": {},
                    },
                ),
            )
            for aid in ids
        ],
    )
    group = f"g-{uuid.uuid4().hex[:8]}"
    extra = ("--batch-size", "100", "--pause-ms", "40")
    proc = _relay(kafka_bootstrap, prefix, output, group, tmp_path, *extra).start()
    deadline = time.monotonic() + 60
    while count(kafka_bootstrap, output) < 600:
        assert proc.alive() and time.monotonic() < deadline, proc.log_tail()
        time.sleep(0.05)
    code, seconds = proc.terminate(timeout_s=15)
    assert code == 0 and seconds <= 10, (code, seconds, proc.log_tail())
    assert count(kafka_bootstrap, output) < len(ids), "stopped too late to test a restart"

    proc = _relay(kafka_bootstrap, prefix, output, group, tmp_path, *extra).start()
    try:
        wait_caught_up(kafka_bootstrap, group, namer.events, timeout_s=90)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()
    outputs = [k.decode() for _p, _o, k, _v in read_all(kafka_bootstrap, output)]
    assert set(outputs) == set(ids), f"lost {len(set(ids) - set(outputs))}"
    assert len(outputs) == len(ids), f"{len(outputs) - len(ids)} duplicates after a clean stop"
