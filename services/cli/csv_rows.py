"""CSV rows as FeatureEvents (and Actuals), checked against the deployment's champion signature.

`streamops produce --format csv` reads rows through `CsvRows`: the id column is each row's
association id; the label column (`--label-column`, or the column the champion was trained to
predict) is never a feature; where the champion is known, columns it does not take are left out.
A row that cannot become an event (more or fewer cells than the header, no id, unreadable) is
yielded with its line number and what is wrong, never raised.

The champion is read by `find_champion`, which replays the `deployments` and `models` topics to
their end once, as the scorer does at start (model signatures are not verified: the scorer does
that before serving). `Champion.refusal` is the scorer's own check
(`services.scorer.scoring.check_features`): a feature absent, or a value a numeric input cannot
take, is refused; missing values, extra columns and unseen categories are not. An external
deployment's events are not scored by the scorer, so they are not checked either.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from confluent_kafka import KafkaException

from services.common.errors import ConfigError, PoisonMessage, RetryableError
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import TopicFollower
from services.common.topics import TopicNamer
from services.scorer.scoring import check_features

REPLAY_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Champion:
    """The model a deployment serves: its name, version, input signature and training columns."""

    deployment: str
    model_name: str
    version: int
    features: tuple[Mapping[str, Any], ...]
    trained_columns: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs, in signature order."""
        return [spec["name"] for spec in self.features]

    @property
    def label_column(self) -> str | None:
        """The column it learned to predict: the one training column that is not an input.

        >>> Champion("d", "m", 1, ({"name": "x", "kind": "numeric"},), ("x", "y")).label_column
        'y'
        """
        others = [c for c in self.trained_columns if c not in self.feature_names]
        return others[0] if len(others) == 1 else None

    def refusal(self, features: Mapping[str, Any]) -> PoisonMessage | None:
        """Why the scorer would refuse an event with these features; None if it scores it."""
        try:
            check_features(features, self.features)
        except PoisonMessage as exc:
            return exc
        return None

    def __str__(self) -> str:
        return f"{self.deployment}'s champion {self.model_name} v{self.version}"


class ControlState:
    """The newest Deployment of one name and every model's signature, as records are applied."""

    def __init__(self, namer: TopicNamer, deployment: str) -> None:
        self.namer, self.deployment = namer, deployment
        self.newest: dict[str, Any] | None = None
        self.models: dict[str, Champion] = {}

    def apply(self, topic: str, record: dict[str, Any]) -> None:
        """Keep what one decoded `deployments` or `models` record says."""
        if topic == self.namer.deployments and record.get("name") == self.deployment:
            if self.newest is None or record["revision"] > self.newest["revision"]:
                self.newest = record
        elif topic == self.namer.models and record:
            c = record["content"]
            columns = tuple(col["name"] for col in c["lineage"]["dataset"]["columns"])
            features = tuple(c["signature_in"]["features"])
            champion = Champion(self.deployment, c["name"], c["version"], features, columns)
            self.models[c["model_id"]] = champion

    def champion(self) -> tuple[Champion | None, str]:
        """The deployment's current champion (or None), and one line saying which, or why not."""
        without = "sending without the signature check"
        if self.newest is None:
            return None, (
                f"deployment {self.deployment!r} not found on {self.namer.deployments}: "
                f"{without} (the scorer refuses events of a deployment it does not know)"
            )
        if self.newest.get("external"):  # the scorer skips its events: the user's service scores
            return None, f"deployment {self.deployment!r} is external: {without}"
        ref = self.newest["champion"]
        champion = self.models.get(ref["model_id"])
        if champion is None:
            return None, (
                f"{self.deployment}'s champion {ref['model_name']} v{ref['version']} not found "
                f"on {self.namer.models}: {without}"
            )
        return champion, f"checking rows against {champion} ({len(champion.features)} features)"


def find_champion(
    consumer_conf: dict[str, Any],
    namer: TopicNamer,
    deployment: str,
    timeout_s: float = REPLAY_TIMEOUT_S,
) -> tuple[Champion | None, str]:
    """Replay `deployments` and `models` to their end once; the champion as `ControlState` says."""
    state = ControlState(namer, deployment)
    decoder = TopicDecoder(namer)

    def decode(topic: str, value: bytes) -> tuple[str, dict[str, Any]]:
        try:
            return decoder(topic, value)
        except PoisonMessage:  # the services dead-letter it; this check needs good records only
            return "", {}

    follower = TopicFollower(consumer_conf, [namer.deployments, namer.models], decode, state.apply)
    unknown = f"champion of {deployment!r} unknown"
    try:
        follower.start()
    except (RetryableError, KafkaException) as exc:
        return None, f"{unknown} ({exc}): sending without the signature check"
    try:
        follower.wait_ready(timeout_s)
    except RetryableError as exc:
        return None, f"{unknown} ({exc}): sending without the signature check"
    finally:
        follower.stop()
    return state.champion()


@dataclasses.dataclass(frozen=True)
class Row:
    """One input line or row: its JSON, or what is wrong with it; with actuals, its Actual JSON."""

    line: int
    value: bytes = b""
    problem: str = ""  # set: the row is skipped; `kind` says which kind of problem for counts
    kind: str = ""
    actual: bytes | None = None


def _cell(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


class CsvRows:
    """A CSV file's rows as FeatureEvent JSON; the header is checked when this is built."""

    def __init__(
        self,
        stream: TextIO,
        deployment: str,
        id_column: str,
        label_column: str | None = None,
        champion: Champion | None = None,
        actuals: bool = False,
    ) -> None:
        self._reader = csv.reader(stream)
        self.header = next(self._reader, [])
        self.deployment, self.id_column, self.actuals = deployment, id_column, actuals
        self.unlabelled = 0  # rows with an empty label cell (with actuals: no Actual sent)
        columns = ", ".join(self.header) or "none"
        if id_column not in self.header:
            raise ConfigError(
                f"the CSV has no {id_column!r} column (its columns: {columns}); each row needs "
                "an id to join its actual later: name the column that identifies a row with "
                "--id-column"
            )
        if label_column is not None and label_column not in self.header:
            raise ConfigError(f"the CSV has no {label_column!r} column (its columns: {columns})")
        guess = champion.label_column if champion else None
        self.label = label_column or (guess if guess in self.header else None)
        if actuals and self.label is None:
            raise ConfigError("--actuals sends each row's label: name its column (--label-column)")
        self.features = [c for c in self.header if c not in (id_column, self.label)]
        self.left_out = [self.label] if self.label else []  # listed once, before sending
        if champion is not None:
            absent = [f for f in champion.feature_names if f not in self.header]
            if absent:
                raise ConfigError(
                    f"the CSV has no column for {', '.join(map(repr, absent))}, input of "
                    f"{champion}: the scorer refuses events without it (its columns: {columns})"
                )
            self.left_out += [c for c in self.features if c not in champion.feature_names]
            self.features = [c for c in self.features if c in champion.feature_names]

    def __iter__(self) -> Iterator[Row]:
        width, end = len(self.header), self._reader.line_num
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = self._reader.line_num
                yield Row(end, problem=f"unreadable CSV: {exc}", kind="unreadable")
                continue
            start, end = end + 1, self._reader.line_num  # a quoted cell may span lines
            if not cells:
                continue  # a blank line
            if len(cells) != width:
                why = f"{len(cells)} cells where the header has {width}"
                yield Row(start, problem=why, kind="ragged")
                continue
            yield self._row(start, dict(zip(self.header, cells, strict=True)))

    def _row(self, line: int, row: dict[str, str]) -> Row:
        aid = row[self.id_column]
        if not aid:
            return Row(line, problem=f"no id in column {self.id_column!r}", kind="no id")
        ids = {"association_id": aid, "deployment": self.deployment}
        features = {name: _cell(row[name]) for name in self.features}
        actual = None
        if self.actuals and self.label is not None:
            if row[self.label] == "":
                self.unlabelled += 1
            else:
                actual = json.dumps({**ids, "label": _cell(row[self.label])}).encode()
        return Row(line, json.dumps({**ids, "features": features}).encode(), actual=actual)
