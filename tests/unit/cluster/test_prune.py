"""What pruning deletes, what it keeps, and in which order."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.apply import apply_phases, phase_of
from reconciler.cluster.prune import (
    KEEP_ANNOTATION,
    deletion_order,
    identity,
    kept,
    plan_prune,
    would_prune_everything,
)
from reconciler.model import ObjectRef


def ref(kind: str, name: str, api_version: str = "v1", namespace: str | None = "app") -> ObjectRef:
    return ObjectRef(api_version=api_version, kind=kind, name=name, namespace=namespace)


WEB = ref("Deployment", "web", "apps/v1")
WEB_SERVICE = ref("Service", "web")
CONFIG = ref("ConfigMap", "web-config")
WORKER = ref("Deployment", "worker", "apps/v1")


def live_with(annotations: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "app", "annotations": annotations},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }


def test_objects_no_longer_rendered_are_pruned_in_inventory_order() -> None:
    """The inventory minus the render, in inventory order."""
    inventory = [WORKER, WEB, CONFIG, WEB_SERVICE]
    assert plan_prune(inventory=inventory, rendered=[WEB, WEB_SERVICE]) == [WORKER, CONFIG]


def test_another_version_of_the_same_group_is_the_same_object() -> None:
    """apps/v1beta2 and apps/v1 name one Deployment: moving the manifest prunes nothing."""
    old = ref("Deployment", "web", "apps/v1beta2")
    assert plan_prune(inventory=[old], rendered=[WEB]) == []
    assert identity(old) == identity(WEB) == ("apps", "Deployment", "app", "web")


def test_group_kind_namespace_and_name_each_tell_objects_apart() -> None:
    """A different group, kind, namespace or name is a different object, so it is pruned."""
    inventory = [
        ref("Ingress", "web", "networking.k8s.io/v1"),
        ref("Ingress", "web", "extensions/v1beta1"),
        ref("Service", "web", namespace="other"),
        ref("ConfigMap", "web"),
        ref("Service", "api"),
    ]
    rendered = [ref("Ingress", "web", "networking.k8s.io/v1"), WEB_SERVICE]
    assert plan_prune(inventory=inventory, rendered=rendered) == inventory[1:]


def test_core_group_is_empty_and_cluster_scoped_objects_have_no_namespace() -> None:
    """v1 objects are of group "", and a cluster-scoped object matches without a namespace."""
    namespace = ref("Namespace", "app", namespace=None)
    assert identity(namespace) == ("", "Namespace", "", "app")
    assert plan_prune(inventory=[namespace], rendered=[ref("Namespace", "app", namespace="")]) == []


def test_an_object_recorded_twice_is_pruned_once() -> None:
    """Duplicates in the inventory (two versions of one object) give one deletion."""
    inventory = [WORKER, ref("Deployment", "worker", "apps/v1beta2")]
    assert plan_prune(inventory=inventory, rendered=[]) == [WORKER]


def test_the_keep_annotation_false_keeps_an_object() -> None:
    """reconciler.io/prune: "false" (any case) keeps; anything else, or none, does not."""
    assert KEEP_ANNOTATION == "reconciler.io/prune"
    assert kept(live_with({KEEP_ANNOTATION: "false"}))
    assert kept(live_with({KEEP_ANNOTATION: " False "}))
    assert not kept(live_with({KEEP_ANNOTATION: "true"}))
    assert not kept(live_with({"argocd.argoproj.io/sync-options": "Prune=false"}))
    assert not kept(live_with(None))


def test_kept_is_false_for_a_gone_or_malformed_object() -> None:
    """No object, or metadata/annotations that are not maps, never raise."""
    assert not kept(None)
    assert not kept({"metadata": "nonsense"})
    assert not kept(live_with(["reconciler.io/prune=false"]))
    assert not kept(live_with({KEEP_ANNOTATION: False}))


def test_pruning_everything_is_noticed() -> None:
    """An empty render, or one sharing nothing with the inventory, would prune everything."""
    inventory = [WEB, WEB_SERVICE]
    assert would_prune_everything(inventory=inventory, rendered=[])
    renamed = [ref("Deployment", "web2", "apps/v1"), ref("Service", "web2")]
    assert would_prune_everything(inventory=inventory, rendered=renamed)


def test_pruning_some_or_nothing_is_not_everything() -> None:
    """One object still rendered, or an empty inventory, is not a prune of everything."""
    assert not would_prune_everything(inventory=[WEB, WEB_SERVICE], rendered=[WEB])
    assert not would_prune_everything(inventory=[], rendered=[])
    assert not would_prune_everything(inventory=[], rendered=[WEB])


def test_deletion_goes_in_reverse_apply_order() -> None:
    """Custom resources and workloads first, then Services, config, CRDs, Namespaces last."""
    refs = [
        ref("Namespace", "app", namespace=None),
        ref("ConfigMap", "cfg"),
        ref("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1", None),
        WEB,
        ref("Widget", "w", "example.com/v1"),
        WEB_SERVICE,
        ref("Role", "reader", "rbac.authorization.k8s.io/v1"),
        ref("StatefulSet", "db", "apps/v1"),
    ]
    kinds = [[r.kind for r in group] for group in deletion_order(refs)]
    assert kinds == [
        ["Widget"],
        ["Deployment", "StatefulSet"],
        ["Service"],
        ["ConfigMap", "Role"],
        ["CustomResourceDefinition"],
        ["Namespace"],
    ]
    assert deletion_order([]) == []


def test_deletion_order_is_the_apply_order_reversed() -> None:
    """Every kind's deletion group is its apply phase, walked backwards."""
    kinds = ["Namespace", "Secret", "Service", "Job", "Ingress", "CustomResourceDefinition"]
    objects = [{"kind": kind, "metadata": {"name": kind.lower()}} for kind in kinds]
    applied = [[o["kind"] for o in phase] for phase in apply_phases(objects) if phase]
    deleted = [[r.kind for r in group] for group in deletion_order([ref(k, k) for k in kinds])]
    assert deleted == list(reversed(applied))
    assert phase_of("Namespace") < phase_of("ConfigMap") < phase_of("Deployment")
