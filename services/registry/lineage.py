"""The lineage graph of a model: its ancestors and descendants, the data each was trained on.

Nodes are models, data versions and stream slices; edges are `parent` (model -> the model it was
trained to replace), `trained_on` (model -> data version) and `slice` (data version -> the
topic/partition/offset range it was read from). The walk is bounded so a long history stays cheap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

ModelLookup = Callable[[str], Mapping[str, Any] | None]  # model id -> summary
ChildLookup = Callable[[str], list[str]]  # model id -> ids of models naming it as parent

MAX_MODELS = 200


def _dataset_node(dataset: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"data:{dataset['content_hash']}",
        "kind": "data",
        "label": f"{dataset['kind']} {dataset['uri']}",
        "content_hash": dataset["content_hash"],
        "rows": dataset["rows"],
    }


def _slice_node(s: Mapping[str, Any]) -> dict[str, Any]:
    ident = f"{s['topic']}/{s['partition']}/{s['start_offset']}-{s['end_offset']}"
    return {"id": f"slice:{ident}", "kind": "slice", "label": ident, **dict(s)}


def lineage_graph(
    model_id: str, model: ModelLookup, children: ChildLookup, max_models: int = MAX_MODELS
) -> dict[str, Any] | None:
    """{root, nodes, edges, truncated} around `model_id`, or None when the model is unknown."""
    if model(model_id) is None:
        return None
    nodes: dict[str, dict[str, Any]] = {}
    edges: set[tuple[str, str, str]] = set()
    queue: deque[str] = deque([model_id])
    seen: set[str] = set()
    truncated = False
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        if len(seen) >= max_models:
            truncated = True
            break
        seen.add(current)
        summary = model(current)
        node_id = f"model:{current}"
        if summary is None:  # a parent we never saw (rejected, or from before retention)
            nodes[node_id] = {
                "id": node_id,
                "kind": "model",
                "label": "unknown model",
                "model_id": current,
            }
            continue
        nodes[node_id] = {
            "id": node_id,
            "kind": "model",
            "label": f"{summary['name']} v{summary['version']}",
            "model_id": current,
            "name": summary["name"],
            "version": summary["version"],
            "created_at": summary["created_at"],
            "metrics": summary["lineage"]["metrics"],
        }
        dataset = summary["lineage"]["dataset"]
        data = _dataset_node(dataset)
        nodes[data["id"]] = data
        edges.add((node_id, data["id"], "trained_on"))
        for s in dataset["stream_slices"]:
            sl = _slice_node(s)
            nodes[sl["id"]] = sl
            edges.add((data["id"], sl["id"], "slice"))
        parent = summary.get("parent_id")
        if parent:
            edges.add((node_id, f"model:{parent}", "parent"))
            queue.append(parent)
        for child in children(current):
            edges.add((f"model:{child}", node_id, "parent"))
            queue.append(child)
    known = set(nodes)
    return {
        "root": f"model:{model_id}",
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": [
            {"source": s, "target": t, "kind": k}
            for s, t, k in sorted(edges)
            if s in known and t in known
        ],
        "truncated": truncated,
    }
