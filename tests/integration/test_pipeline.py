"""The reconcile pipeline end to end: real PostgreSQL, fakekube over HTTP, real git."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import asyncpg

from reconciler.db import asyncpg_dsn
from reconciler.model import Deployment, RepoPolicy
from tests.support.pipeline import Pipeline


def _healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


async def test_a_row_becomes_healthy_with_history(pipeline: Pipeline) -> None:
    """A desired row is rendered, applied and recorded healthy with one history row."""
    await pipeline.start_daemon()
    written = await pipeline.deploy("app", image_ref="reg/app:1")
    d = await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    assert d.observed_generation == written.generation
    assert d.status_message == ""
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:1"
    managers = {m["manager"] for m in live["metadata"]["managedFields"]}
    assert "reconciler" in managers
    [entry] = await pipeline.store.history(deployment_id=d.id)
    assert (entry.action, entry.status, entry.image_ref) == ("deploy", "healthy", "reg/app:1")
    assert entry.sha is not None and entry.sha == d.current_sha


async def test_new_image_rolls_out(pipeline: Pipeline) -> None:
    """Changing image_ref applies the new image and records a second healthy attempt."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.store.set_desired(project="app", environment="prod", image_ref="reg/app:2")
    d = await pipeline.wait_for("app", until=_healthy_on("reg/app:2"))
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:2"
    history = await pipeline.store.history(deployment_id=d.id)
    assert [(h.image_ref, h.status) for h in history] == [
        ("reg/app:2", "healthy"),
        ("reg/app:1", "healthy"),
    ]


async def test_commit_redeploys_only_what_it_changes(pipeline: Pipeline) -> None:
    """A commit changing one project's output redeploys it; the other only records the sha."""
    pipeline.ops.write_project("other")
    pipeline.ops.commit("other")
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.deploy("other")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.wait_for("other", until=_healthy_on("reg/app:1"))
    applies_app = pipeline.applies(name="app")
    pipeline.ops.write_project("other", greeting="changed")
    new_sha = pipeline.ops.commit("change other")
    other = await pipeline.wait_for("other", until=lambda d: d.current_sha == new_sha)
    app = await pipeline.wait_for("app", until=lambda d: d.current_sha == new_sha)
    assert len(await pipeline.store.history(deployment_id=other.id)) == 2
    assert len(await pipeline.store.history(deployment_id=app.id)) == 1
    assert pipeline.applies(name="app") == applies_app
    config = pipeline.fakekube.get_object(
        api_version="v1", kind="ConfigMap", name="other-config", namespace="other-prod"
    )
    assert config is not None and config["data"]["greeting"] == "changed"


async def test_failing_image_fails_with_the_clusters_reason_without_hot_loop(
    pipeline: Pipeline,
) -> None:
    """A crash-looping image ends 'failed' with CrashLoopBackOff and waits before retrying."""
    pipeline.fakekube.faults.crashloop_images.append("reg/app:bad*")
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:bad")
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    assert "CrashLoopBackOff" in d.status_message
    assert d.next_attempt_at is not None and d.attempts == 1
    [entry] = await pipeline.store.history(deployment_id=d.id)
    assert (entry.status, entry.image_ref) == ("failed", "reg/app:bad")
    assert "CrashLoopBackOff" in entry.message
    applies = pipeline.applies(name="app")
    await asyncio.sleep(2.5)  # more than two poll intervals: a hot loop would apply again
    assert pipeline.applies(name="app") == applies
    assert len(await pipeline.store.history(deployment_id=d.id)) == 1


async def test_rollback_returns_to_the_last_healthy_image(pipeline: Pipeline) -> None:
    """Rollback after a failure deploys the previous healthy image and sets desired active."""
    pipeline.fakekube.faults.crashloop_images.append("reg/app:bad")
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1", values_override={"greeting": "v1"})
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.store.set_desired(
        project="app",
        environment="prod",
        image_ref="reg/app:bad",
        values_override={"greeting": "v2"},
    )
    await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    await pipeline.store.set_desired(project="app", environment="prod", desired_status="rollback")
    d = await pipeline.wait_for(
        "app", until=lambda d: d.desired_status == "active" and d.current_status == "healthy"
    )
    assert (d.image_ref, d.current_image_ref) == ("reg/app:1", "reg/app:1")
    assert d.values_override == {"greeting": "v1"}
    assert d.generation == d.observed_generation
    [latest, *_] = await pipeline.store.history(deployment_id=d.id)
    assert (latest.action, latest.status, latest.image_ref) == ("rollback", "healthy", "reg/app:1")


async def test_rollback_with_nothing_to_return_to_fails_once(pipeline: Pipeline) -> None:
    """A rollback without healthy history fails with a clear message and does not loop."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1", desired_status="rollback")
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    assert d.status_message.startswith("nothing to roll back to")
    assert d.next_attempt_at is None
    await asyncio.sleep(1.5)
    assert len(await pipeline.store.history(deployment_id=d.id)) == 1


async def test_stop_scales_to_zero_and_active_brings_it_back(pipeline: Pipeline) -> None:
    """'stopped' scales the Deployment to 0; 'active' restores its replicas."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.store.set_desired(project="app", environment="prod", desired_status="stopped")
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "stopped")
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None and live["spec"]["replicas"] == 0
    [entry, *_] = await pipeline.store.history(deployment_id=d.id)
    assert (entry.action, entry.status) == ("stop", "stopped")
    await pipeline.store.set_desired(project="app", environment="prod", desired_status="active")
    await pipeline.wait_for(
        "app",
        until=lambda d: d.current_status == "healthy" and d.generation == d.observed_generation,
    )
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None and live["spec"]["replicas"] == 2


async def test_stop_of_a_deployment_never_deployed(pipeline: Pipeline) -> None:
    """Stopping what never ran records 'stopped' and says nothing was running."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", desired_status="stopped")
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "stopped")
    assert d.status_message.startswith("nothing was running")


async def test_template_error_fails_with_file_and_line(pipeline: Pipeline) -> None:
    """A template error fails the deployment with file:line, never retried, others unharmed."""
    pipeline.ops.write(
        "broken/deployment.yaml.j2",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: broken
        spec:
          replicas: {{ values.nope }}
        """,
    )
    pipeline.ops.commit("broken")
    await pipeline.start_daemon()
    await pipeline.deploy("broken")
    await pipeline.deploy("app")
    d = await pipeline.wait_for("broken", until=lambda d: d.current_status == "failed")
    assert "deployment.yaml.j2:6" in d.status_message
    assert "undefined name" in d.status_message
    assert d.next_attempt_at is None
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))


async def test_two_daemons_apply_each_generation_once(pipeline: Pipeline) -> None:
    """Two daemons on one database apply every deployment exactly once per generation."""
    for i in range(6):
        pipeline.ops.write_project(f"svc{i}")
    pipeline.ops.commit("six services")
    await pipeline.start_daemon(daemon_id="daemon-a", repos_dir=pipeline.settings.repos_dir / "a")
    await pipeline.start_daemon(daemon_id="daemon-b", repos_dir=pipeline.settings.repos_dir / "b")
    for i in range(6):
        await pipeline.deploy(f"svc{i}")
    for i in range(6):
        await pipeline.wait_for(f"svc{i}", until=_healthy_on("reg/app:1"))
    for i in range(6):
        assert pipeline.applies(name=f"svc{i}") == 1, f"svc{i} applied more than once"
    for i in range(6):
        await pipeline.store.set_desired(
            project=f"svc{i}", environment="prod", image_ref="reg/app:2"
        )
    for i in range(6):
        await pipeline.wait_for(f"svc{i}", until=_healthy_on("reg/app:2"))
    for i in range(6):
        assert pipeline.applies(name=f"svc{i}") == 2
    recorded_by = set()
    for d in await pipeline.store.list_deployments():
        recorded_by |= {h.daemon for h in await pipeline.store.history(deployment_id=d.id)}
    assert recorded_by <= {"daemon-a", "daemon-b"}


async def test_newer_generation_supersedes_a_rollout(pipeline: Pipeline) -> None:
    """A new image written mid-rollout records the old attempt 'superseded' and deploys the new."""
    pipeline.fakekube.rollout_delay_s = 60.0  # the first rollout cannot finish by itself
    await pipeline.start_daemon(health_timeout_s=60.0)
    await pipeline.deploy("app", image_ref="reg/app:slow")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "syncing")
    pipeline.fakekube.rollout_delay_s = 0.05
    await pipeline.store.set_desired(project="app", environment="prod", image_ref="reg/app:2")
    d = await pipeline.wait_for("app", until=_healthy_on("reg/app:2"))
    history = await pipeline.store.history(deployment_id=d.id)
    assert [(h.image_ref, h.status) for h in history] == [
        ("reg/app:2", "healthy"),
        ("reg/app:slow", "superseded"),
    ]
    assert history[1].message == "a newer desired state arrived before this rollout finished"


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""

WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ project }}-widget
spec:
  image: {{ image_ref | tojson }}
"""


async def test_crd_and_its_custom_resource_in_one_render(pipeline: Pipeline) -> None:
    """A CRD is applied and Established before the custom resource that needs it."""
    # A CRD is cluster-scoped: the ops repo's policy must allow it (the default refuses it).
    await pipeline.store.set_policy(
        ops_repo_id=pipeline.ops_repo_id,
        policy=RepoPolicy(cluster_kinds=("CustomResourceDefinition",)),
    )
    pipeline.ops.write("crd-app/crd.yaml", CRD)
    pipeline.ops.write("crd-app/widget.yaml.j2", WIDGET)
    pipeline.ops.commit("crd")
    await pipeline.start_daemon()
    d = await pipeline.deploy("crd-app", image_ref="reg/w:1")
    d = await pipeline.wait_for("crd-app", until=_healthy_on("reg/w:1"))
    widget = pipeline.fakekube.get_object(
        api_version="example.com/v1", kind="Widget", name="crd-app-widget", namespace="crd-app-prod"
    )
    assert widget is not None and widget["spec"]["image"] == "reg/w:1"
    assert d.status_message == ""


async def test_a_deleted_repos_dir_is_cloned_again_and_the_deploy_converges(
    pipeline: Pipeline,
) -> None:
    """rm -rf of the repos dir under a running daemon: the next deploy's render finds its
    snapshot gone, the repo is cloned again, and the new image converges (nothing permanent)."""
    # Only the vanished snapshot may cause the new clone, not the periodic sync.
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
    try:
        await conn.execute("UPDATE ops_repos SET sync_interval_s = 3600")
    finally:
        await conn.close()
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    first = await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    repos_dir = pipeline.settings.repos_dir
    assert first.current_sha is not None
    assert (repos_dir / ".snapshots" / "ops" / first.current_sha / "app").is_dir()
    shutil.rmtree(repos_dir)
    await pipeline.store.set_desired(project="app", environment="prod", image_ref="reg/app:2")
    d = await pipeline.wait_for("app", until=_healthy_on("reg/app:2"))
    assert d.current_sha == first.current_sha
    assert (repos_dir / ".snapshots" / "ops" / first.current_sha / "app").is_dir()
    history = await pipeline.store.history(deployment_id=d.id)
    assert [(h.image_ref, h.status) for h in history][:1] == [("reg/app:2", "healthy")]
