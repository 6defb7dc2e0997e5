"""Server-side apply: ownership in FieldsV1, conflicts, force, pruning, status, dry runs."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment

WEB = f"{DEPLOYMENTS}/web"


def _fields(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    for entry in obj["metadata"]["managedFields"]:
        if entry["manager"] == manager and entry["operation"] == operation:
            fields: dict[str, Any] = entry["fieldsV1"]
            return fields
    raise AssertionError(f"no {operation} entry for {manager}")


async def test_apply_requires_a_field_manager(api: Api) -> None:
    """An apply patch without fieldManager is refused with 400."""
    answer = await api.patch(WEB, deployment(), "application/apply-patch+yaml")
    assert answer.status == 400
    assert answer.body["kind"] == "Status"
    assert "fieldManager" in answer.body["message"]


async def test_apply_creates_then_updates(api: Api) -> None:
    """The first apply creates (201), the next one updates the same object (200)."""
    created = await api.apply(WEB, deployment(replicas=1))
    assert created.status == 201
    updated = await api.apply(WEB, deployment(replicas=3))
    assert updated.status == 200
    assert updated.body["spec"]["replicas"] == 3
    assert updated.body["metadata"]["uid"] == created.body["metadata"]["uid"]
    assert updated.body["metadata"]["generation"] == 2


async def test_managed_fields_key_list_items_by_schema_keys(api: Api) -> None:
    """Containers are keyed by name and ports by containerPort+protocol (defaulted to TCP)."""
    answer = await api.apply(WEB, deployment(), manager="reconciler")
    fields = _fields(answer.body, "reconciler")
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"web"}']
    item = containers['k:{"name":"web"}']
    assert item["."] == {}
    assert item["f:image"] == {}
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in item["f:ports"]
    assert "f:protocol" not in item["f:ports"]['k:{"containerPort":80,"protocol":"TCP"}']
    # Defaulted fields belong to no manager; the selector is an atomic map.
    assert "f:strategy" not in fields["f:spec"]
    assert fields["f:spec"]["f:selector"] == {}
    assert "f:name" not in fields.get("f:metadata", {})


async def test_noop_apply_keeps_the_resource_version(api: Api, quiet: FakeKube) -> None:
    """Applying the same configuration again changes nothing, not even resourceVersion."""
    first = await api.apply(WEB, deployment())
    second = await api.apply(WEB, deployment())
    assert second.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]
    assert second.body["metadata"]["managedFields"] == first.body["metadata"]["managedFields"]


async def test_conflict_names_the_field_and_force_takes_it(api: Api) -> None:
    """Another manager's different value is a 409 naming the field; force moves ownership."""
    await api.apply(WEB, deployment(replicas=2), manager="reconciler")
    conflict = await api.apply(WEB, deployment(replicas=5), manager="ops")
    assert conflict.status == 409
    assert conflict.body["reason"] == "Conflict"
    causes = conflict.body["details"]["causes"]
    assert causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "reconciler" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    assert 'conflict with "reconciler" using apps/v1: .spec.replicas' in conflict.body["message"]
    forced = await api.apply(WEB, deployment(replicas=5), manager="ops", force="true")
    assert forced.status == 200
    assert forced.body["spec"]["replicas"] == 5
    assert "f:replicas" in _fields(forced.body, "ops")["f:spec"]
    assert "f:replicas" not in _fields(forced.body, "reconciler")["f:spec"]


async def test_same_value_is_shared_not_a_conflict(api: Api) -> None:
    """Two managers applying the same value both own it."""
    await api.apply(WEB, deployment(replicas=2), manager="a")
    shared = await api.apply(WEB, deployment(replicas=2), manager="b")
    assert shared.status == 200
    assert "f:replicas" in _fields(shared.body, "a")["f:spec"]
    assert "f:replicas" in _fields(shared.body, "b")["f:spec"]


async def test_conflict_on_a_keyed_list_item_field(api: Api) -> None:
    """A container image owned by another manager conflicts with its list-item path."""
    await api.apply(WEB, deployment(image="nginx:1"), manager="a")
    answer = await api.apply(WEB, deployment(image="nginx:2"), manager="b")
    assert answer.status == 409
    fields = [cause["field"] for cause in answer.body["details"]["causes"]]
    assert fields == ['.spec.template.spec.containers[name="web"].image']


async def test_fields_no_longer_applied_are_removed(api: Api) -> None:
    """A label the manager stops applying disappears; a dropped field returns to its default."""
    body = deployment(replicas=3)
    body["metadata"]["labels"] = {"team": "a", "tier": "web"}
    await api.apply(WEB, body, manager="reconciler")
    smaller = deployment(replicas=None)
    smaller["metadata"]["labels"] = {"team": "a"}
    answer = await api.apply(WEB, smaller, manager="reconciler")
    assert answer.body["metadata"]["labels"] == {"team": "a"}
    assert answer.body["spec"]["replicas"] == 1


async def test_fields_another_manager_owns_are_kept(api: Api) -> None:
    """A field dropped by one manager stays while another manager still applies it."""
    body = deployment()
    body["metadata"]["labels"] = {"team": "a"}
    await api.apply(WEB, body, manager="reconciler")
    await api.apply(WEB, body, manager="ops")
    answer = await api.apply(WEB, deployment(), manager="reconciler")
    assert answer.body["metadata"]["labels"] == {"team": "a"}


async def test_removed_container_disappears(api: Api) -> None:
    """A container the manager stops applying is removed from the list."""
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    await api.apply(WEB, body)
    answer = await api.apply(WEB, deployment())
    names = [c["name"] for c in answer.body["spec"]["template"]["spec"]["containers"]]
    assert names == ["web"]


async def test_status_sent_to_the_main_resource_is_ignored(api: Api, quiet: FakeKube) -> None:
    """On a kind with a status subresource, status in an apply to the object is dropped."""
    body = deployment()
    body["status"] = {"replicas": 42}
    answer = await api.apply(WEB, body)
    assert "status" not in answer.body or answer.body["status"].get("replicas") != 42
    assert "f:status" not in _fields(answer.body, "test")


async def test_apply_to_the_status_subresource(api: Api, quiet: FakeKube) -> None:
    """Status applied to /status is stored and owned with subresource "status"."""
    await api.apply(WEB, deployment())
    answer = await api.apply(
        f"{WEB}/status",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "status": {"replicas": 7},
        },
        manager="status-writer",
    )
    assert answer.status == 200
    assert answer.body["status"]["replicas"] == 7
    entry = next(
        e for e in answer.body["metadata"]["managedFields"] if e["manager"] == "status-writer"
    )
    assert entry["subresource"] == "status"


async def test_dry_run_stores_nothing(api: Api, quiet: FakeKube) -> None:
    """dryRun=All returns the would-be object but neither creates nor changes anything."""
    dry = await api.apply(WEB, deployment(), dryRun="All")
    assert dry.status == 201
    assert (await api.get(WEB)).status == 404
    await api.apply(WEB, deployment(replicas=1))
    before = (await api.get(WEB)).body
    changed = await api.apply(WEB, deployment(replicas=4), dryRun="All")
    assert changed.body["spec"]["replicas"] == 4
    after = (await api.get(WEB)).body
    assert after["spec"]["replicas"] == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_managed_fields_in_an_apply_are_refused(api: Api) -> None:
    """Sending managedFields in an apply configuration is a 400."""
    body = deployment()
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    answer = await api.apply(WEB, body)
    assert answer.status == 400
    assert "metadata.managedFields must be nil" in answer.body["message"]


async def test_unknown_fields_with_strict_validation(api: Api) -> None:
    """fieldValidation=Strict refuses undeclared fields; Warn drops them with a warning."""
    body = deployment()
    body["spec"]["replicass"] = 3
    strict = await api.apply(WEB, body, fieldValidation="Strict")
    assert strict.status == 400
    assert ".spec.replicass: field not declared in schema" in strict.body["message"]
    warned = await api.apply(WEB, body, fieldValidation="Warn")
    assert warned.status == 201
    assert "replicass" not in warned.body["spec"]
    assert 'unknown field \\"spec.replicass\\"' in warned.headers["Warning"]


async def test_update_operations_take_fields_silently(api: Api) -> None:
    """A merge patch by another manager takes the field over without a conflict."""
    await api.apply(WEB, deployment(replicas=2), manager="reconciler")
    patched = await api.patch(
        WEB, {"spec": {"replicas": 4}}, "application/merge-patch+json", fieldManager="editor"
    )
    assert patched.status == 200
    assert "f:replicas" in _fields(patched.body, "editor", "Update")["f:spec"]
    assert "f:replicas" not in _fields(patched.body, "reconciler")["f:spec"]
    # The applier now conflicts with the editor, until it forces.
    again = await api.apply(WEB, deployment(replicas=2), manager="reconciler")
    assert again.status == 409
    assert 'conflict with "editor" using apps/v1' in again.body["message"]


async def test_invalid_objects_are_refused_with_causes(api: Api) -> None:
    """A selector that does not match the template labels is 422 Invalid with a cause."""
    body = copy.deepcopy(deployment())
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    answer = await api.apply(WEB, body)
    assert answer.status == 422
    assert answer.body["reason"] == "Invalid"
    assert answer.body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert answer.body["message"].startswith('Deployment.apps "web" is invalid:')


async def test_missing_namespace_is_not_found(api: Api) -> None:
    """Applying into a namespace that does not exist is a 404 naming the namespace."""
    answer = await api.apply(
        "/apis/apps/v1/namespaces/nowhere/deployments/web", deployment(namespace="nowhere")
    )
    assert answer.status == 404
    assert answer.body["message"] == 'namespaces "nowhere" not found'
