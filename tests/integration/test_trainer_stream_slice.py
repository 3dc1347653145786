"""Stream-slice training on the real broker: events joined with actuals, ranges that replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.__main__ import main
from services.common import serde
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from services.trainer.stream_slice import StreamSliceReader
from tests import kafka_login
from tests.kafka_support import make_topics, read_all
from tests.trainer_support import produce_labelled

pytestmark = pytest.mark.integration


def reader(bootstrap: str, namer: TopicNamer, min_chunk: int = 100) -> StreamSliceReader:
    conf = kafka_login.kafka_config(bootstrap, "test-slices").consumer("test-slices")
    return StreamSliceReader(
        conf, namer.events, namer.actuals, TopicDecoder(namer), min_chunk=min_chunk
    )


def test_last_n_are_the_newest_labelled_events_and_their_ranges_replay(
    kafka_bootstrap: str, prefix: str
) -> None:
    namer = make_topics(kafka_bootstrap, prefix, ["events", "actuals"])
    labelled = produce_labelled(kafka_bootstrap, namer, 3000)
    slices = reader(kafka_bootstrap, namer)
    ds = slices.read("credit", 600)
    assert ds.rows == 600 and ds.version.kind == "stream"
    newest = sorted(labelled, key=lambda r: r[1])[-600:]
    assert [str(v) for v in ds.labels] == [label for _aid, _t, label in newest]
    ranges = ds.version.stream_slices
    assert {s["topic"] for s in ranges} == {namer.events, namer.actuals}
    assert all(s["start_offset"] <= s["end_offset"] for s in ranges)
    # Bounded: the newest 600 of 3000 do not need the whole events topic.
    read_events = sum(
        s["end_offset"] - s["start_offset"] + 1 for s in ranges if s["topic"] == namer.events
    )
    assert read_events < 2000

    more = produce_labelled(kafka_bootstrap, namer, 200, start=3000)  # the stream moves on
    assert more
    again = slices.replay("credit", ranges)
    assert again.version.content_hash == ds.version.content_hash
    assert again.rows == ds.rows
    assert [str(v) for v in again.labels] == [str(v) for v in ds.labels]
    assert slices.read("credit", 600).version.content_hash != ds.version.content_hash


def test_train_from_stream_records_ranges_that_replay_to_its_content_hash(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namer = make_topics(kafka_bootstrap, prefix, ["events", "actuals", "models", "deployments"])
    produce_labelled(kafka_bootstrap, namer, 1500, seed=4)
    keys = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(keys)]) == 0
    argv = ["train", "--from-stream", "--deployment", "credit", "--last", "800"]
    argv += ["--model-name", "credit", "--prefix", prefix, "--keys-dir", str(keys)]
    assert main([*argv, "--estimator", "logreg"]) == 0
    assert f"{namer.events}[" in capsys.readouterr().out  # the summary lists the slices
    ((_p, _o, _k, value),) = read_all(kafka_bootstrap, namer.models, idle_s=0.5)
    _, record = serde.decode(value, expected="ModelPublished")
    data = record["content"]["lineage"]["dataset"]
    assert (data["kind"], data["rows"]) == ("stream", 800)
    replayed = reader(kafka_bootstrap, namer).replay("credit", data["stream_slices"])
    assert replayed.version.content_hash == data["content_hash"]
