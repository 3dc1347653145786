"""The Avro contract: every record parses, every field is documented, fingerprints are pinned."""

from __future__ import annotations

import pytest

from services.common.schemas import SCHEMA_DIR, SchemaSet, default_schemas

pytestmark = pytest.mark.unit

DESIGN_RECORDS = {
    "FeatureEvent",
    "Prediction",
    "Actual",
    "ModelPublished",
    "Deployment",
    "DriftReport",
    "ThresholdBreach",
    "RetrainRequest",
    "RetrainOutcome",
    "GovernanceEvent",
    "DeadLetter",
}

# Changing a schema changes its fingerprint and breaks every reader that only knows the old one.
# If this test fails, follow schemas/README.md (new fields need defaults; keep the old schema
# readable), then pin the new fingerprint here on purpose.
GOLDEN = {
    "Actual": "cef675e19c89e25e",
    "DeadLetter": "f077dd01058cde60",
    "Deployment": "ad4f9f05f04aa231",
    "DriftReport": "606e8b319b8cd717",
    "FeatureEvent": "61f1cae6f3e2eb99",
    "GovernanceEvent": "a50a340d64c357ca",
    "ModelPublished": "ada4beb07e9aeec3",
    "Prediction": "aec1b19f6748521b",
    "RetrainOutcome": "e259c5cbaa0aa482",
    "RetrainRequest": "802665ba9f824dc0",
    "ThresholdBreach": "078ef62ad0b21e1f",
}


def test_one_file_per_design_record():
    assert set(default_schemas().names()) == DESIGN_RECORDS
    assert {p.stem for p in SCHEMA_DIR.glob("*.avsc")} == DESIGN_RECORDS


@pytest.mark.parametrize("name", sorted(DESIGN_RECORDS))
def test_golden_fingerprints(name):
    got = default_schemas().fingerprint(name).hex()
    assert got == GOLDEN[name], (
        f"{name}.avsc changed (fingerprint {got}, pinned {GOLDEN[name]}): follow the evolution "
        "rules in schemas/README.md, then update GOLDEN in this test"
    )


def _undocumented(node, path):
    if isinstance(node, dict):
        if node.get("type") == "record":
            if not node.get("doc"):
                yield f"{path}{node['name']} (record)"
            for field in node["fields"]:
                if not field.get("doc"):
                    yield f"{path}{node['name']}.{field['name']}"
                yield from _undocumented(field["type"], f"{path}{node['name']}.")
        else:
            for value in node.values():
                yield from _undocumented(value, path)
    elif isinstance(node, list):
        for value in node:
            yield from _undocumented(value, path)


@pytest.mark.parametrize("name", sorted(DESIGN_RECORDS))
def test_every_record_and_field_is_documented(name):
    missing = list(_undocumented(default_schemas().raw(name), ""))
    assert not missing, f"fields without a doc: {missing}"


def test_fingerprints_are_unique_and_resolvable():
    s = SchemaSet()
    fps = {s.fingerprint(n) for n in s.names()}
    assert len(fps) == len(s.names())
    assert all(s.name_for(s.fingerprint(n)) == n for n in s.names())
    assert s.name_for(b"\x00" * 8) is None


# Earlier versions still readable (schemas/previous/), pinned like the current ones.
EARLIER = {
    "2e9b6632bb341001": "Deployment",  # v1
    "146d1f8177ff9648": "Deployment",  # v2: external, label delay, release policy; unsigned
    "70c992d6c2e55458": "DriftReport",
}


def test_earlier_versions_are_pinned_and_resolve_to_their_record():
    s = default_schemas()
    assert {fp.hex(): s.name_for(fp) for fp in s.earlier_fingerprints()} == EARLIER


@pytest.mark.parametrize("fingerprint", ["2e9b6632bb341001", "146d1f8177ff9648"])
def test_a_record_written_with_an_earlier_version_reads_into_the_current_one(fingerprint):
    import io

    import fastavro

    from services.common.serde import MAGIC, Serde

    s = default_schemas()
    fp = bytes.fromhex(fingerprint)
    old = dict(DEPLOYMENT_V1)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, s.earlier_writer(fp), old)
    name, record = Serde(s).decode(MAGIC + fp + buf.getvalue(), expected="Deployment")
    assert name == "Deployment"
    assert record["external"] is False  # the new fields' defaults
    assert record["label_delay_seconds"] is None
    assert record["key_id"] == "" and record["signature"] is None  # unsigned
    assert {k: record[k] for k in old} == old


def test_an_earlier_version_without_a_current_record_is_refused(tmp_path):
    (tmp_path / "previous").mkdir()
    (tmp_path / "Actual.avsc").write_text((SCHEMA_DIR / "Actual.avsc").read_text())
    (tmp_path / "previous" / "Nope.v1.avsc").write_text(
        '{"type": "record", "name": "Nope", "doc": "d", "fields": []}'
    )
    with pytest.raises(ValueError, match="no Nope.avsc"):
        SchemaSet(tmp_path)


DEPLOYMENT_V1 = {
    "name": "d",
    "revision": 3,
    "updated_at": 1,
    "updated_by": "ann",
    "reason": "r",
    "champion": {"model_name": "m", "model_id": "a" * 64, "version": 2},
    "challengers": [],
    "mode": "shadow",
    "humility": [],
    "thresholds": [],
    "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
    "window_seconds": 60,
}


def test_nested_records_can_be_looked_up_for_canonical_encodings():
    assert default_schemas().nested("ModelContent")["name"].endswith("ModelContent")
    with pytest.raises(KeyError):
        default_schemas().nested("NoSuchRecord")


def _named(node, found):
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            found.append(node)
        for value in node.values():
            _named(value, found)
    elif isinstance(node, list):
        for value in node:
            _named(value, found)
    return found


def test_named_types_are_unique_across_all_files():
    defined: dict[str, dict] = {}
    for name in DESIGN_RECORDS:
        for node in _named(default_schemas().raw(name), []):
            full = f"{node.get('namespace', 'streamops')}.{node['name']}"
            assert full not in defined or defined[full] == node, f"{full} defined twice"
            defined[full] = node
    assert len(defined) > len(DESIGN_RECORDS)  # nested records are counted too


@pytest.mark.parametrize("name", sorted(DESIGN_RECORDS))
def test_namespace_timestamps_and_optional_defaults(name):
    raw = default_schemas().raw(name)
    assert raw["namespace"] == "streamops"
    for record in _named(raw, []):
        for field in record.get("fields", []):
            kind = field["type"]
            if field["name"].endswith(("_time", "_at", "_start", "_end")) or field["name"] == "at":
                if not field["name"].endswith("_offset"):
                    assert kind == {"type": "long", "logicalType": "timestamp-millis"}, field
            if isinstance(kind, list) and kind[0] == "null":
                assert "default" in field and field["default"] is None, field


def test_decoded_timestamps_are_epoch_millis():
    from services.common import serde

    record = {"association_id": "a", "deployment": "d", "label": "x", "actual_time": 123}
    assert serde.decode(serde.encode("Actual", record))[1]["actual_time"] == 123
