"""Kube's lean request path (kube_http) against fakekube over HTTP: what the server receives
(query, body, credentials, impersonation), what it answers in errors and retries, and the
request metrics."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from reconciler.cluster import kube as kube_module
from reconciler.cluster.kube import Kube
from reconciler.cluster.kube_config import load_configuration
from reconciler.errors import KubernetesError
from reconciler.model import ObjectRef
from reconciler.testing.fakekube import FakeKube, RequestRecord
from reconciler.testing.fakekube.pytest_plugin import (  # noqa: F401 - fixtures, used by name
    fakekube,
    kubeconfig_path,
)

MANAGER = "reconciler-test"


def configmap(name: str, *, namespace: str = "default", **data: str) -> dict[str, Any]:
    """A ConfigMap manifest."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


@pytest_asyncio.fixture
async def kube(kubeconfig_path: Path) -> AsyncIterator[Kube]:  # noqa: F811
    """A connection with fast, few retries."""
    connection = await Kube.connect(
        kubeconfig=str(kubeconfig_path), max_retries=2, retry_base_s=0.01, retry_max_s=0.02
    )
    await connection.is_namespaced("v1", "ConfigMap")  # discovered before any fault is set
    yield connection
    await connection.close()


def object_requests(server: FakeKube, method: str) -> list[RequestRecord]:
    """The requests with ``method`` about ConfigMaps (discovery left out)."""
    return [r for r in server.request_log if r.method == method and "/configmaps" in r.path]


async def test_apply_sends_the_object_forced_as_its_manager(
    fakekube: FakeKube,  # noqa: F811
    kube: Kube,
) -> None:
    """An apply is a forced apply patch as our manager; the answer is the stored object."""
    stored = await kube.apply(configmap("cm", colour="blue"), field_manager=MANAGER)
    assert stored["data"] == {"colour": "blue"}
    assert stored["metadata"]["resourceVersion"]
    (patch,) = object_requests(fakekube, "PATCH")
    assert patch.path == "/api/v1/namespaces/default/configmaps/cm"
    assert patch.content_type == "application/apply-patch+yaml"
    assert patch.query == {"fieldManager": MANAGER, "force": "true"}
    live = fakekube.get_object(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
    assert live is not None and live["data"] == {"colour": "blue"}


async def test_a_cluster_scoped_apply_has_no_namespace_in_its_path(
    fakekube: FakeKube,  # noqa: F811
    kube: Kube,
) -> None:
    """A cluster-scoped kind is applied at its cluster path, even if a namespace is given."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}}
    await kube.apply(namespace, field_manager=MANAGER)
    patches = [r.path for r in fakekube.request_log if r.method == "PATCH"]
    assert patches == ["/api/v1/namespaces/team-x"]


async def test_a_dry_run_apply_stores_nothing(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """A dry-run apply answers the object it would store, with dryRun=All, and stores nothing."""
    answer = await kube.apply(configmap("cm", colour="red"), field_manager=MANAGER, dry_run=True)
    assert answer["data"] == {"colour": "red"}
    assert (
        fakekube.get_object(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
        is None
    )
    (patch,) = object_requests(fakekube, "PATCH")
    assert patch.query == {"dryRun": "All", "fieldManager": MANAGER, "force": "true"}


async def test_get_patch_and_delete_reach_the_object(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """get, restart (merge patch) and delete act on the object; 404 reads as gone."""
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
    assert await kube.get(ref) is None
    await kube.apply(configmap("cm", colour="blue"), field_manager=MANAGER)
    got = await kube.get(ref)
    assert got is not None and got["data"] == {"colour": "blue"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "reg/web:1"}]},
            },
        },
    }
    await kube.apply(deployment, field_manager=MANAGER)
    web = ObjectRef.from_object(deployment)
    await kube.restart(web, at="2026-12-02T00:00:00Z", field_manager="restarter")
    restarted = await kube.get(web)
    assert restarted is not None
    annotations = restarted["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-12-02T00:00:00Z"}
    (merge,) = [r for r in fakekube.request_log if r.content_type == "application/merge-patch+json"]
    assert merge.field_manager == "restarter"
    assert await kube.delete(ref, propagation="Foreground") is True
    assert await kube.delete(ref) is False
    deletes = [r.query.get("propagationPolicy") for r in object_requests(fakekube, "DELETE")]
    assert deletes == ["Foreground", "Background"]


async def test_lists_page_with_the_label_selector(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """A list sends its label selector and page size and returns the matching items."""
    await kube.apply(
        {**configmap("a"), "metadata": {**configmap("a")["metadata"], "labels": {"x": "1"}}},
        field_manager=MANAGER,
    )
    await kube.apply(configmap("b"), field_manager=MANAGER)
    items, version = await kube.list_objects(
        api_version="v1", kind="ConfigMap", label_selector="x=1"
    )
    assert [item["metadata"]["name"] for item in items] == ["a"]
    assert items[0]["kind"] == "ConfigMap" and version
    (listed,) = object_requests(fakekube, "GET")
    assert listed.query == {"labelSelector": "x=1", "limit": "500"}


async def test_the_kubeconfig_token_is_sent(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """Every request carries the kubeconfig's bearer token."""
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
    await kube.apply(configmap("cm"), field_manager=MANAGER)
    await kube.get(ref)
    await kube.delete(ref)
    sent = {r.method: r.authorization for r in fakekube.request_log if "/configmaps" in r.path}
    assert sent == {
        "PATCH": "Bearer fakekube",
        "GET": "Bearer fakekube",
        "DELETE": "Bearer fakekube",
    }


async def test_an_exec_plugin_token_is_sent(
    fakekube: FakeKube,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A token from the kubeconfig's exec credential plugin is the one sent."""
    credential = (
        'print(\'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",'
        ' "status": {"token": "from-exec"}}\')'
    )
    config = yaml.safe_load(fakekube.write_kubeconfig(tmp_path / "kubeconfig").read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": ["-c", credential],
            "interactiveMode": "Never",
        }
    }
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    kube = await Kube.connect(kubeconfig=str(path))
    try:
        await kube.apply(configmap("cm"), field_manager=MANAGER)
    finally:
        await kube.close()
    (patch,) = object_requests(fakekube, "PATCH")
    assert patch.authorization == "Bearer from-exec"


async def test_a_refreshed_token_is_sent(
    fakekube: FakeKube,  # noqa: F811
    kubeconfig_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The configuration's token refresh hook (in-cluster tokens) runs before each request."""
    issued = itertools.count(1)

    async def with_refresh(kubeconfig: str | None) -> Any:
        configuration: Any = await load_configuration(kubeconfig)

        def refresh(config: Any) -> None:
            config.api_key["BearerToken"] = f"Bearer rotated-{next(issued)}"

        configuration.refresh_api_key_hook = refresh
        return configuration

    monkeypatch.setattr(kube_module, "load_configuration", with_refresh)
    kube = await Kube.connect(kubeconfig=str(kubeconfig_path))
    try:
        await kube.apply(configmap("cm"), field_manager=MANAGER)
        await kube.apply(configmap("cm", colour="green"), field_manager=MANAGER)
    finally:
        await kube.close()
    tokens = [r.authorization for r in object_requests(fakekube, "PATCH")]
    assert len(set(tokens)) == 2
    assert all(token and token.startswith("Bearer rotated-") for token in tokens)


async def test_impersonation_reaches_the_server(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """An impersonating connection's applies, reads and deletes carry Impersonate-User; the
    connection it came from still sends none."""
    alice = kube.impersonating("alice")
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
    await alice.apply(configmap("cm"), field_manager=MANAGER)
    await alice.get(ref)
    await alice.delete(ref)
    await kube.get(ref)
    users = [
        (r.method, r.impersonated_user) for r in fakekube.request_log if "/configmaps" in r.path
    ]
    assert users == [("PATCH", "alice"), ("GET", "alice"), ("DELETE", "alice"), ("GET", None)]


async def test_a_refused_apply_is_not_retried(fakekube: FakeKube, kube: Kube) -> None:  # noqa: F811
    """404 (no such namespace) and 422 (invalid name) fail at once with the server's message."""
    with pytest.raises(KubernetesError) as missing:
        await kube.apply(configmap("cm", namespace="nowhere"), field_manager=MANAGER)
    assert (missing.value.status, missing.value.reason) == (404, "NotFound")
    assert (
        str(missing.value)
        == 'apply ConfigMap nowhere/cm: 404 NotFound: namespaces "nowhere" not found'
    )
    with pytest.raises(KubernetesError) as invalid:
        await kube.apply(configmap("Bad_Name"), field_manager=MANAGER)
    assert (invalid.value.status, invalid.value.reason) == (422, "Invalid")
    expected = 'apply ConfigMap default/Bad_Name: 422 Invalid: ConfigMap "Bad_Name" is invalid: '
    assert str(invalid.value).startswith(expected + "metadata.name: ")
    assert len(object_requests(fakekube, "PATCH")) == 2


async def test_a_server_error_is_retried_then_reported(
    fakekube: FakeKube,  # noqa: F811
    kube: Kube,
) -> None:
    """500 is retried up to max_retries, then reported with the server's message."""
    fakekube.faults.error_rate = 1.0
    fakekube.faults.error_kinds = ("500",)
    with pytest.raises(KubernetesError) as failed:
        await kube.apply(configmap("cm"), field_manager=MANAGER)
    assert (failed.value.status, failed.value.reason) == (500, "InternalError")
    assert str(failed.value) == (
        "apply ConfigMap default/cm: 500 InternalError: an error on the server"
        " (fakekube faults.error_rate)"
    )
    assert len(object_requests(fakekube, "PATCH")) == 3


async def test_a_throttled_apply_waits_out_retry_after(
    fakekube: FakeKube,  # noqa: F811
    kube: Kube,
) -> None:
    """429 with Retry-After is retried no sooner than the server asked, then succeeds."""
    fakekube.faults.throttle_rate = 1.0
    fakekube.faults.retry_after_s = 1
    seen: list[tuple[str, int]] = []

    def lift_after_first(verb: str, status: int) -> None:
        seen.append((verb, status))
        fakekube.faults.throttle_rate = 0.0

    kube.requests.hook = lift_after_first
    started = time.monotonic()
    stored = await kube.apply(configmap("cm"), field_manager=MANAGER)
    assert stored["metadata"]["name"] == "cm"
    first, second = object_requests(fakekube, "PATCH")
    assert (first.status, second.status) == (429, 201)
    assert seen == [("patch", 429), ("patch", 201)]
    assert second.time - first.time >= 0.9
    assert time.monotonic() - started >= 0.9


async def test_requests_are_counted_by_verb_and_status(
    fakekube: FakeKube,  # noqa: F811
    kube: Kube,
) -> None:
    """The request counter sees every lean request with its verb and the answer's status."""
    seen: list[tuple[str, int]] = []
    kube.requests.hook = lambda verb, status: seen.append((verb, status))
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="cm", namespace="default")
    await kube.apply(configmap("cm"), field_manager=MANAGER)
    await kube.apply(configmap("cm"), field_manager=MANAGER, dry_run=True)
    await kube.get(ref)
    await kube.delete(ref)
    await kube.get(ref)
    fakekube.faults.error_rate = 1.0
    with pytest.raises(KubernetesError):
        await kube.apply(configmap("cm"), field_manager=MANAGER)
    assert seen == [
        ("patch", 201),
        ("patch", 200),
        ("get", 200),
        ("delete", 200),
        ("get", 404),
        ("patch", 500),
        ("patch", 500),
        ("patch", 500),
    ]


async def test_the_environment_proxy_carries_the_requests(
    fakekube: FakeKube,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured as the client's session honours it: here fakekube is the proxy
    of an API server whose name does not resolve, so only a proxied request reaches it."""
    config = yaml.safe_load(fakekube.write_kubeconfig(tmp_path / "kubeconfig").read_text())
    config["clusters"][0]["cluster"]["server"] = "http://api.fakekube.invalid"
    path = tmp_path / "proxied-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fakekube.url)
    kube = await Kube.connect(kubeconfig=str(path), max_retries=0)
    try:
        stored = await kube.apply(configmap("cm"), field_manager=MANAGER)
    finally:
        await kube.close()
    assert stored["metadata"]["name"] == "cm"
    assert len(object_requests(fakekube, "PATCH")) == 1
