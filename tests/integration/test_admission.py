"""Policy and ownership, end to end: real PostgreSQL, fakekube over HTTP, real git."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.cluster.kube import Kube
from reconciler.errors import InputError
from reconciler.model import Deployment, RepoPolicy
from reconciler.policy import OWNER_LABELS
from tests.support.pipeline import Pipeline

SHARED_CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shared
data:
  written_by: {{ project }}
"""

KUBE_SYSTEM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: pwn
  namespace: kube-system
data: {}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwn
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: evil-prod}]
"""


def _status(status: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == status


async def test_a_template_cannot_write_outside_its_namespace(pipeline: Pipeline) -> None:
    """A template writing into kube-system and binding cluster-admin is refused whole: nothing
    of it is applied, the message names each object and rule, and others keep deploying."""
    pipeline.ops.write_project("evil")
    pipeline.ops.write("evil/zzz-escape.yaml", KUBE_SYSTEM)
    pipeline.ops.commit("evil")
    await pipeline.start_daemon()
    await pipeline.deploy("evil")
    await pipeline.deploy("app")
    d = await pipeline.wait_for("evil", until=_status("failed"))
    assert d.status_message == (
        "refused by policy, nothing applied: ConfigMap kube-system/pwn: namespace 'kube-system' "
        "is not allowed for deployment evil/prod (allowed: its own evil-prod); "
        "ClusterRoleBinding pwn: kind ClusterRoleBinding is denied for ops repo 'ops' "
        "(its policy's denied_kinds)"
    )
    assert d.next_attempt_at is None
    assert pipeline.applies(kind_plural="configmaps", name="pwn") == 0
    assert pipeline.applies(kind_plural="deployments", name="evil") == 0
    assert pipeline.applies(kind_plural="clusterrolebindings") == 0
    await pipeline.wait_for("app", until=_status("healthy"))


async def test_applied_objects_are_labelled_with_their_deployment(pipeline: Pipeline) -> None:
    """Every applied object names its deployment in labels, so kubectl get -l finds them."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_status("healthy"))
    for kind, api_version in (("Deployment", "apps/v1"), ("ConfigMap", "v1"), ("Service", "v1")):
        name = "app-config" if kind == "ConfigMap" else "app"
        live = pipeline.fakekube.get_object(
            api_version=api_version, kind=kind, name=name, namespace="app-prod"
        )
        assert live is not None, kind
        labels = live["metadata"]["labels"]
        assert (labels[OWNER_LABELS[0]], labels[OWNER_LABELS[1]]) == ("app", "prod"), kind


async def test_two_deployments_never_fight_over_one_object(pipeline: Pipeline) -> None:
    """A second deployment rendering an object the first owns fails naming both; the first's
    object keeps its content, and stopping the second leaves the first running."""
    await pipeline.store.set_policy(
        ops_repo_id=pipeline.ops_repo_id, policy=RepoPolicy(namespaces=("shared",))
    )
    # An administrator creates the shared namespace; deployments may only write into it.
    kube = await Kube.connect(kubeconfig=str(pipeline.kubeconfig))
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}}
        await kube.apply(namespace, field_manager="admin")
    finally:
        await kube.close()
    for project in ("web", "canary"):
        pipeline.ops.write_project(project)
        pipeline.ops.write(f"{project}/shared.yaml.j2", SHARED_CONFIG)
    pipeline.ops.commit("two projects share one object")
    await pipeline.start_daemon()
    await pipeline.deploy("web")
    await pipeline.wait_for("web", until=_status("healthy"))
    await pipeline.deploy("canary")
    canary = await pipeline.wait_for("canary", until=_status("failed"))
    assert canary.status_message == (
        "ConfigMap shared/settings belongs to deployment web/prod: deployment canary/prod may not "
        "take over another deployment's objects (nothing applied)"
    )
    live = pipeline.fakekube.get_object(
        api_version="v1", kind="ConfigMap", name="settings", namespace="shared"
    )
    assert live is not None and live["data"] == {"written_by": "web"}
    await pipeline.store.set_desired(project="canary", environment="prod", desired_status="stopped")
    await pipeline.wait_for("canary", until=lambda d: d.current_status != "syncing")
    web = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="web", namespace="web-prod"
    )
    assert web is not None and web["spec"]["replicas"] == 2
    web_row = await pipeline.wait_for("web", until=_status("healthy"))
    assert web_row.current_status == "healthy"


async def test_a_repo_with_a_service_account_is_applied_as_it(pipeline: Pipeline) -> None:
    """Every write for an ops repo whose policy names a ServiceAccount carries
    Impersonate-User for it; a malformed service account is refused when the policy is set."""
    await pipeline.store.set_policy(
        ops_repo_id=pipeline.ops_repo_id, policy=RepoPolicy(service_account="team-a/deployer")
    )
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_status("healthy"))
    writes = [r for r in pipeline.fakekube.request_log if r.method == "PATCH"]
    assert writes
    assert {r.impersonated_user for r in writes} == {"system:serviceaccount:team-a:deployer"}
    with pytest.raises(InputError) as refused:
        await pipeline.store.set_policy(
            ops_repo_id=pipeline.ops_repo_id, policy=RepoPolicy(service_account="deployer")
        )
    assert str(refused.value).endswith(
        "service_account must be NAMESPACE/NAME of a ServiceAccount "
        "(ops_repo_policies_service_account_is_namespace_slash_name)"
    )
