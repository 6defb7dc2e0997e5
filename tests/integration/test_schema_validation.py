"""Validate before apply, with the real daemon: a schema-invalid render touches nothing."""

from __future__ import annotations

from reconciler.model import Deployment
from reconciler.testing.fakekube import FakeKube
from tests.support.pipeline import Pipeline


def _apply_requests(kube: FakeKube) -> list[str]:
    """Paths of every server-side apply fakekube received, accepted or refused."""
    return [
        record.path
        for record in kube.request_log
        if record.method == "PATCH" and record.content_type == "application/apply-patch+yaml"
    ]


def _failed(d: Deployment) -> bool:
    return d.current_status == "failed"


async def test_a_string_for_an_integer_is_refused_before_anything_is_applied(
    pipeline: Pipeline,
) -> None:
    """replicas 'three' fails permanently naming file, document and field; nothing is applied."""
    await pipeline.start_daemon()
    d = await pipeline.deploy("app", values_override={"replicas": "three"})
    d = await pipeline.wait_for("app", until=_failed)
    expected = (
        "deployment.yaml.j2, document 1: Deployment app-prod/app: spec.replicas:"
        " 'three' is not of type 'integer'"
    )
    assert expected in d.status_message
    assert "the Kubernetes 1.32 schema" in d.status_message
    assert d.next_attempt_at is None, "a schema error is permanent: no retry"
    [entry] = await pipeline.store.history(deployment_id=d.id)
    assert (entry.status, entry.action) == ("failed", "deploy")
    assert expected in entry.message
    assert _apply_requests(pipeline.fakekube) == []
    fixed = await pipeline.deploy("app", values_override={"replicas": 1})
    healthy = await pipeline.wait_for(
        "app", until=lambda row: row.current_status == "healthy", timeout_s=30
    )
    assert healthy.id == fixed.id and healthy.status_message == ""


async def test_an_unknown_field_is_refused_and_other_deployments_go_on(pipeline: Pipeline) -> None:
    """An unknown field in a later document is named; the daemon still serves the others."""
    pipeline.ops.write_project("typo")
    pipeline.ops.write(
        "typo/service.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: typo-extra
        data: {a: b}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: typo
        spec:
          selector: {app: typo}
          ports: [{port: 80, targetPort: 8080, protocl: TCP}]
        """,
    )
    pipeline.ops.commit("a typo")
    await pipeline.start_daemon()
    await pipeline.deploy("typo")
    d = await pipeline.wait_for("typo", until=_failed)
    assert (
        "service.yaml, document 2: Service typo-prod/typo: spec.ports[0].protocl: unknown field"
        in d.status_message
    )
    assert "configmap.yaml" not in d.status_message
    assert not [path for path in _apply_requests(pipeline.fakekube) if "typo" in path]
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=lambda row: row.current_status == "healthy")
    assert not [path for path in _apply_requests(pipeline.fakekube) if "typo" in path]
