"""The implicit Namespace apply is skipped for namespaces the daemon's applies already saw, and
made again when the cluster says the namespace is gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from reconciler.cluster.apply import apply_all
from reconciler.cluster.namespaces import KnownNamespaces, SeenNamespaces
from reconciler.errors import KubernetesError, kubernetes_error
from reconciler.model import ObjectRef
from reconciler.testing.memory import InMemoryCluster

NAMESPACE = ObjectRef("v1", "Namespace", "web-prod", None)
CONFIG = ObjectRef("v1", "ConfigMap", "web-config", "web-prod")


def _objects() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "web-prod"},
            "data": {"a": "1"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "web-prod"},
            "spec": {"replicas": 1},
        },
    ]


async def _apply(cluster: InMemoryCluster, known: SeenNamespaces | None) -> list[dict[str, Any]]:
    return await apply_all(
        kube=cluster, objects=_objects(), namespace="web-prod", field_manager="r", known=known
    )


def _namespace_applies(cluster: InMemoryCluster) -> int:
    return cluster.applied.count(NAMESPACE)


async def test_a_namespace_seen_once_is_not_applied_again() -> None:
    """The second apply of a deployment sends no Namespace apply, and applies every object."""
    cluster = InMemoryCluster(namespaces_enforced=True)
    known = KnownNamespaces().seen_by(None)
    await _apply(cluster, known)
    stored = await _apply(cluster, known)
    assert _namespace_applies(cluster) == 1
    assert [o["kind"] for o in stored] == ["ConfigMap", "Deployment"]
    assert cluster.applied.count(CONFIG) == 2


async def test_without_a_memory_the_namespace_is_applied_every_time() -> None:
    """No memory lent (``reconciler diff``, tests): the Namespace is applied on every call."""
    cluster = InMemoryCluster(namespaces_enforced=True)
    await _apply(cluster, None)
    await _apply(cluster, None)
    assert _namespace_applies(cluster) == 2


async def test_a_deleted_namespace_is_created_again_and_the_apply_succeeds() -> None:
    """After the namespace is deleted (its objects with it), the next apply is refused 404,
    applies the Namespace and retries: everything is back."""
    cluster = InMemoryCluster(namespaces_enforced=True)
    known = KnownNamespaces().seen_by(None)
    await _apply(cluster, known)
    await _apply(cluster, known)
    assert await cluster.delete(NAMESPACE)
    assert CONFIG not in cluster.objects
    stored = await _apply(cluster, known)
    assert _namespace_applies(cluster) == 2
    assert NAMESPACE in cluster.objects and CONFIG in cluster.objects
    assert [o["kind"] for o in stored] == ["ConfigMap", "Deployment"]
    assert known.holds("web-prod")


class _Refusing(InMemoryCluster):
    """Refuses every ConfigMap apply with ``error``."""

    def __init__(self, error: KubernetesError) -> None:
        super().__init__(namespaces_enforced=True)
        self.error = error

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False
    ) -> dict[str, Any]:
        if obj.get("kind") == "ConfigMap":
            raise self.error
        return await super().apply(obj, field_manager=field_manager, dry_run=dry_run)


async def test_a_terminating_namespace_refuses_as_before() -> None:
    """403 Forbidden (the namespace is being terminated) is the attempt's error as it was;
    the Namespace is not applied again for it."""
    error = kubernetes_error(
        "apply ConfigMap web-prod/web-config: 403 Forbidden: unable to create new content in "
        "namespace web-prod because it is being terminated",
        status=403,
        reason="Forbidden",
    )
    cluster = _Refusing(error)
    known = KnownNamespaces().seen_by(None)
    known.remember("web-prod")
    await cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web-prod"}},
        field_manager="someone",
    )
    with pytest.raises(KubernetesError) as raised:
        await _apply(cluster, known)
    assert raised.value is error
    assert _namespace_applies(cluster) == 1


async def test_a_404_that_persists_is_raised_after_one_retry() -> None:
    """A 404 the Namespace does not cure (a kind gone) is raised after one more try, not
    looped on."""
    error = kubernetes_error(
        "404 NotFound: the server could not find", status=404, reason="NotFound"
    )
    cluster = _Refusing(error)
    known = KnownNamespaces().seen_by(None)
    await cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web-prod"}},
        field_manager="someone",
    )
    known.remember("web-prod")
    with pytest.raises(KubernetesError) as raised:
        await _apply(cluster, known)
    assert raised.value is error
    assert _namespace_applies(cluster) == 2
    assert known.holds("web-prod")


async def test_the_memory_is_per_user() -> None:
    """A namespace the daemon's own requests saw is still applied as an impersonated user
    (who may not be allowed to): the user is refused as before."""
    cluster = InMemoryCluster(namespaces_enforced=True)
    known = KnownNamespaces()
    await _apply(cluster, known.seen_by(None))
    await _apply(cluster.impersonating("team-a"), known.seen_by("team-a"))
    await _apply(cluster.impersonating("team-a"), known.seen_by("team-a"))
    namespace_applies = [user for ref, user in cluster.applied_as if ref == NAMESPACE]
    assert namespace_applies == [None, "team-a"]


def test_the_memory_is_bounded_and_forgets_the_least_recently_used() -> None:
    """Past its limit the memory forgets the namespace used longest ago."""
    known = KnownNamespaces(limit=2)
    known.remember("a", user=None)
    known.remember("b", user=None)
    assert known.holds("a", user=None)
    known.remember("c", user=None)
    assert len(known) == 2
    assert known.holds("a", user=None) and known.holds("c", user=None)
    assert not known.holds("b", user=None)


async def test_a_render_holding_its_namespace_applies_it_as_rendered() -> None:
    """A rendered Namespace is applied in its phase, never replaced by the bare one."""
    cluster = InMemoryCluster(namespaces_enforced=True)
    known = KnownNamespaces().seen_by(None)
    rendered = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "web-prod", "labels": {"team": "web"}},
    }
    for _ in range(2):
        await apply_all(
            kube=cluster,
            objects=[rendered, *_objects()],
            namespace="web-prod",
            field_manager="r",
            known=known,
        )
    assert _namespace_applies(cluster) == 2
    assert cluster.objects[NAMESPACE]["metadata"]["labels"] == {"team": "web"}
