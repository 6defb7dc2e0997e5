"""Answers and watch lines encoded with orjson mean what the standard library's JSON meant;
the deployment controller's template comparison copies nothing it could mutate."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from reconciler.testing.fakekube import fields
from reconciler.testing.fakekube.api_errors import ApiError
from reconciler.testing.fakekube.controllers.deployment import _same_template
from reconciler.testing.fakekube.http_io import json_response, load_json
from reconciler.testing.fakekube.objects import clone
from reconciler.testing.fakekube.resource_types import ResourceType
from reconciler.testing.fakekube.served_types import TypeRegistry
from reconciler.testing.fakekube.store import WatchEvent
from reconciler.testing.fakekube.watch import bookmark, event_line

_HASH = "pod-template-hash"

ODD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "odd", "namespace": "default", "resourceVersion": "7"},
    "data": {"text": 'é ü 日本 \u2028 "quoted" \\ back', "emoji": "\U0001f600"},
    "big": 2**70,
    "float": 1.0,
    "nested": [{"a": None, "b": [1, 2.5, True]}],
}


def _configmaps() -> ResourceType:
    found = TypeRegistry().by_kind("v1", "ConfigMap")
    assert found is not None
    return found


def test_json_response_body_decodes_to_the_answer() -> None:
    """A JSON answer's body is the answer, non-ASCII text and 70-bit integers included."""
    response = json_response(ODD)
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == ODD


def test_watch_lines_decode_to_their_events() -> None:
    """A watch event line, encoded from the event's cache or afresh, is {type, object}."""
    event = WatchEvent(7, "ADDED", ("", "configmaps"), ODD)
    cached = event_line("ADDED", _configmaps(), ODD, False, {}, event)
    fresh = event_line("MODIFIED", _configmaps(), copy.deepcopy(ODD), False, {})
    assert cached.endswith(b"\n") and cached.count(b"\n") == 1
    assert json.loads(cached) == {"type": "ADDED", "object": ODD}
    assert json.loads(fresh) == {"type": "MODIFIED", "object": ODD}
    line = json.loads(bookmark(_configmaps(), 12))
    assert line["type"] == "BOOKMARK" and line["object"]["metadata"]["resourceVersion"] == "12"


def test_load_json_reads_json_and_refuses_nan() -> None:
    """A JSON body reads as the standard library reads it; NaN, which is not JSON, is a 400
    BadRequest, as kube-apiserver's decoder refuses it."""
    assert load_json(json.dumps(ODD).encode()) == ODD
    with pytest.raises(ApiError) as refused:
        load_json(b'{"x": NaN}')
    assert refused.value.code == 400


def test_load_json_refuses_numbers_beyond_a_double() -> None:
    """1e400 is a 400 BadRequest (Go cannot decode it into a float64), not an infinity."""
    with pytest.raises(ApiError) as refused:
        load_json(b'{"x": 1e400, "s": "\\ud800"}')
    assert refused.value.code == 400


def test_clone_is_a_deep_and_exact_copy() -> None:
    """A clone equals its original, shares no dict or list with it, and keeps what orjson
    cannot carry exactly: 70-bit integers, keys that are not strings, a YAML datetime."""
    when = datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC)
    original: dict[str, Any] = copy.deepcopy(ODD) | {"when": {"at": when}, "keys": {1: "one"}}
    copied = clone(original)
    assert copied == original
    assert copied["big"] == 2**70 and copied["when"]["at"] is when
    plain = clone(ODD)
    assert plain == ODD and type(plain["float"]) is float
    plain["nested"][0]["b"].append("more")
    plain["metadata"]["name"] = "changed"
    assert ODD["nested"][0]["b"] == [1, 2.5, True] and ODD["metadata"]["name"] == "odd"


@pytest.mark.parametrize(
    "key",
    [
        {"type": "Available"},
        {"name": "web", "containerPort": 8080, "protocol": "TCP"},
        {"name": 'qu"ote\\ é 日本 \u2028', "b": -3},
        {"flag": True, "n": None, "f": 1.5},
        {"nested": {"z": 1, "a": [2]}},
        {},
        "plain",
        17,
    ],
)
def test_list_item_keys_are_written_as_sorted_compact_json(key: Any) -> None:
    """A list item's key in a field path is json.dumps(sort_keys, compact) of its key fields,
    whatever they hold."""
    assert fields._dump(key) == json.dumps(key, sort_keys=True, separators=(",", ":"))


def _replica_set(image: str, *, hashed: bool = True) -> dict[str, Any]:
    labels = {"app": "web", _HASH: "abc123"} if hashed else {"app": "web"}
    return {
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            }
        }
    }


def test_same_template_ignores_the_hash_label_and_mutates_nothing() -> None:
    """A ReplicaSet matches the template its hash label aside, and is left as it was."""
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "web:1"}]},
    }
    rs = _replica_set("web:1")
    before = copy.deepcopy(rs)
    assert _same_template(rs, template)
    assert rs == before
    assert _same_template(_replica_set("web:1", hashed=False), template)
    assert not _same_template(_replica_set("web:2"), template)
    assert not _same_template({"spec": {}}, template)
