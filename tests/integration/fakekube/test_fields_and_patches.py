"""The pure pieces: FieldsV1 set algebra and the patch functions, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.testing.fakekube import fields
from reconciler.testing.fakekube.patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from reconciler.testing.fakekube.quantity import canonical_quantity
from reconciler.testing.fakekube.schema import builtin_factory

A: dict[str, Any] = {"f:spec": {"f:replicas": {}, "f:selector": {}}}
B: dict[str, Any] = {"f:spec": {"f:replicas": {}, "f:paused": {}}, "f:metadata": {"f:labels": {}}}


def deployment_node() -> Any:
    """The schema node of apps/v1 Deployment."""
    return builtin_factory().definition("io.k8s.api.apps.v1.Deployment")


def test_union_difference_intersection() -> None:
    """Set algebra works path by path and keeps the FieldsV1 shape."""
    assert fields.union(A, B) == {
        "f:spec": {"f:replicas": {}, "f:selector": {}, "f:paused": {}},
        "f:metadata": {"f:labels": {}},
    }
    assert fields.difference(A, B) == {"f:spec": {"f:selector": {}}}
    assert fields.intersection(A, B) == {"f:spec": {"f:replicas": {}}}
    assert fields.difference(A, A) == {}


def test_membership_of_inner_nodes_is_kept() -> None:
    """A node that is a member and has children carries "." and keeps it when children go."""
    item: dict[str, Any] = {'k:{"name":"web"}': {".": {}, "f:image": {}}}
    without_image = fields.difference(item, {'k:{"name":"web"}': {"f:image": {}}})
    assert without_image == {'k:{"name":"web"}': {}}
    assert list(fields.members(item)) == [('k:{"name":"web"}',), ('k:{"name":"web"}', "f:image")]


def test_format_path_matches_conflict_messages() -> None:
    """Paths print as the apiserver prints them in conflicts."""
    path = ("f:spec", "f:template", "f:spec", "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert fields.format_path(path) == '.spec.template.spec.ports[containerPort=80,protocol="TCP"]'
    assert fields.format_path(("f:metadata", "f:finalizers", 'v:"a/b"')) == (
        '.metadata.finalizers[="a/b"]'
    )


def test_applied_fields_rejects_items_without_keys() -> None:
    """A container without a name cannot be keyed and is refused."""
    body = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(fields.FieldError, match='omits key field "name"'):
        fields.applied_fields(body, deployment_node())


def test_compare_reports_added_modified_removed() -> None:
    """compare sees field-level changes, keyed list items included."""
    old = {"spec": {"replicas": 1, "paused": True}}
    new = {"spec": {"replicas": 2, "minReadySeconds": 5}}
    result = fields.compare(old, new, deployment_node())
    assert result.modified == {"f:spec": {"f:replicas": {}}}
    assert result.added == {"f:spec": {"f:minReadySeconds": {}}}
    assert result.removed == {"f:spec": {"f:paused": {}}}


def test_merge_patch_deletes_with_null() -> None:
    """RFC 7386: null removes a key, objects merge, everything else replaces."""
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None}, "d": [2]}) == {
        "a": {"c": 2},
        "d": [2],
    }


def test_json_patch_move_copy_and_errors() -> None:
    """move and copy work; a path that does not exist is refused."""
    document = {"a": {"b": 1}, "list": [1, 2]}
    moved = json_patch(
        document,
        [
            {"op": "move", "from": "/a/b", "path": "/c"},
            {"op": "copy", "from": "/c", "path": "/list/-"},
        ],
    )
    assert moved == {"a": {}, "c": 1, "list": [1, 2, 1]}
    assert document == {"a": {"b": 1}, "list": [1, 2]}
    with pytest.raises(PatchError):
        json_patch(document, [{"op": "remove", "path": "/missing"}])


def test_strategic_merge_of_primitive_sets_and_replace() -> None:
    """Merge-strategy primitive lists union; $patch: replace replaces a map."""
    node = deployment_node()
    original = {
        "metadata": {"finalizers": ["a"]},
        "spec": {"selector": {"matchLabels": {"x": "1"}}},
    }
    patched = strategic_merge_patch(
        original,
        {
            "metadata": {"finalizers": ["b"]},
            "spec": {"selector": {"$patch": "replace", "matchLabels": {"y": "2"}}},
        },
        node,
    )
    assert patched["metadata"]["finalizers"] == ["a", "b"]
    assert patched["spec"]["selector"] == {"matchLabels": {"y": "2"}}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (1, "1"),
        (0.25, "250m"),
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("12000", "12k"),
        ("2048Mi", "2Gi"),
        ("1536Mi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1.5Ki", "1536"),
        ("129e6", "129e6"),
        ("1e-10", "1e-9"),
        ("0", "0"),
    ],
)
def test_canonical_quantities(given: str | float, stored: str) -> None:
    """Quantities take the canonical form kube-apiserver stores."""
    assert canonical_quantity(given) == stored
