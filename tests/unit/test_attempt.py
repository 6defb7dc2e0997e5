"""One attempt's decisions, on the in-memory database, cluster and renderer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reconciler.attempt import run_attempt
from reconciler.errors import DatabaseUnavailable, OpsRepoError, RenderError
from reconciler.model import Checkout, ObjectRef, RepoPolicy
from reconciler.ports import RenderRequest
from reconciler.testing.memory import (
    LostAcknowledgement,
    web_app,
)
from tests.support.attempts import DAEMON, World, options


async def test_healthy_deploy_records_one_history_row() -> None:
    """A deploy applies, waits for health and records one healthy row with current_* set."""
    world = World()
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    [entry] = world.store.history_of(world.row.id)
    assert (entry.action, entry.status, entry.image_ref, entry.sha) == (
        "deploy",
        "healthy",
        "web:1",
        "c0ffee",
    )
    assert world.current.current_status == "healthy"
    assert world.current.current_image_ref == "web:1"
    assert world.current.observed_generation == world.current.generation
    assert world.current.claimed_by is None


async def test_converges_without_apply_when_the_render_is_applied_and_healthy() -> None:
    """A new generation that renders what is applied and healthy applies nothing and writes
    no history row."""
    world = World()
    await world.attempt()
    applied = len(world.cluster.applied)
    world.store.set_desired(world.row.id, values_override={})  # no change: no new generation
    world.store._put(world.current, generation=world.current.generation + 1)
    outcome = await world.attempt()
    assert outcome.status == "converged"
    assert len(world.cluster.applied) == applied
    assert len(world.store.history_of(world.row.id)) == 1
    assert world.current.observed_generation == world.current.generation


async def test_supersede_ends_a_waiting_rollout_as_superseded() -> None:
    """A rollout still progressing when a newer desired state arrives ends 'superseded',
    without observing the generation."""
    world = World(rollout="hold")
    outcome = await world.attempt(superseded=True)
    assert outcome.status == "superseded"
    [entry] = world.store.history_of(world.row.id)
    assert entry.status == "superseded"
    assert world.current.current_status == "syncing"
    assert world.current.observed_generation == 0


async def test_transient_failure_is_retried_with_backoff() -> None:
    """A transient failure counts one attempt and schedules a retry."""
    world = World()
    world.renderer.errors.append(OpsRepoError("remote unreachable"))
    before = dt.datetime.now(dt.UTC)
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.current.attempts == 1
    assert world.current.next_attempt_at is not None
    assert world.current.next_attempt_at >= before + dt.timedelta(seconds=5)
    assert world.current.status_message == "render failed: remote unreachable"


async def test_permanent_failure_parks_at_once() -> None:
    """A permanent failure (a template error) is not retried until the input changes."""
    world = World()
    world.renderer.errors.append(RenderError("unexpected '}'", location="deploy.yaml:3"))
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.current.next_attempt_at is None
    assert world.current.status_message == "render failed: deploy.yaml:3: unexpected '}'"


async def test_retries_end_parked_after_max_attempts() -> None:
    """The last allowed failure parks the deployment and says it gave up."""
    world = World(rollout="deadline")
    await world.attempt(max_attempts=2)
    assert world.current.next_attempt_at is not None
    world.store._put(world.current, next_attempt_at=dt.datetime.now(dt.UTC))  # the retry is due
    outcome = await world.attempt(max_attempts=2)
    assert outcome.status == "failed"
    assert world.current.attempts == 2
    assert world.current.next_attempt_at is None
    assert "gave up after 2 attempts" in world.current.status_message
    assert [h.status for h in world.store.history_of(world.row.id)] == ["failed", "failed"]


async def test_lost_acknowledgement_is_recorded_exactly_once() -> None:
    """A finish whose COMMIT landed but whose answer was lost is not written twice, and the
    attempt still reports what it recorded."""
    world = World()
    world.store.faults["finish_attempt"] = [LostAcknowledgement()]
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    assert [h.status for h in world.store.history_of(world.row.id)] == ["healthy"]
    assert world.store.calls.count("finish_attempt") == 2
    assert "recorded_status" in world.store.calls


async def test_unreachable_database_is_waited_out_to_record() -> None:
    """An attempt that touched the cluster waits for the database to record its outcome."""
    world = World()
    world.store.faults["finish_attempt"] = [
        DatabaseUnavailable("away"),
        DatabaseUnavailable("away"),
    ]
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    assert [h.status for h in world.store.history_of(world.row.id)] == ["healthy"]


async def test_a_claim_taken_over_records_nothing() -> None:
    """When another daemon took the claim, the attempt ends 'lost' and writes nothing."""
    world = World()
    row = await world.claimed()
    world.store._put(world.current, claimed_by="other-daemon")
    outcome = await run_attempt(
        row,
        store=world.store,
        cluster=world.cluster,
        checkout=world.checkout,
        options=options(world.renderer),
        superseded=lambda: False,
    )
    assert outcome.status == "lost"
    assert world.store.history_of(world.row.id) == []
    assert world.cluster.applied == []


async def test_rollback_with_nothing_to_return_to_fails_permanently() -> None:
    """A rollback with no other healthy image in history fails once, parked, with words."""
    world = World()
    world.store.set_desired(world.row.id, desired_status="rollback")
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.current.next_attempt_at is None
    assert world.current.status_message.startswith("nothing to roll back to")


async def test_rollback_restores_the_previous_image_and_desired_state() -> None:
    """A healthy rollback deploys the last other healthy image and returns desired to active."""
    world = World()
    await world.attempt()
    world.store.set_desired(world.row.id, image_ref="web:2")
    await world.attempt()
    world.store.set_desired(world.row.id, desired_status="rollback")
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    assert world.current.image_ref == "web:1"
    assert world.current.desired_status == "active"
    assert world.current.observed_generation == world.current.generation


async def test_stop_scales_what_is_running() -> None:
    """A stop scales the running image's workloads to 0 and records 'stopped'."""
    world = World()
    await world.attempt()
    world.store.set_desired(world.row.id, desired_status="stopped", image_ref="web:9")
    outcome = await world.attempt()
    assert outcome.status == "stopped"
    assert [replicas for _ref, replicas in world.cluster.scaled] == [0]
    assert world.renderer.requests[-1].image_ref == "web:1"


async def test_no_checkout_is_a_transient_failure() -> None:
    """A repo never fetched fails the attempt with the fetch error, to be retried."""
    world = World()
    world.checkout = Checkout(name="ops", path=None, subdir="", sha=None, error="timed out")
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.current.status_message == "ops repo ops has no checkout yet: timed out"
    assert world.current.next_attempt_at is not None


async def test_degraded_rollout_fails_with_the_health_message() -> None:
    """A rollout that exceeds its progress deadline fails, retryably, naming the reason."""
    world = World(rollout="deadline")
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert "ProgressDeadlineExceeded" in world.current.status_message
    assert world.current.next_attempt_at is not None


def kube_system_config(request: RenderRequest) -> tuple[dict[str, Any], ...]:
    """The web app plus a ConfigMap in kube-system."""
    stray = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "pwn", "namespace": "kube-system"},
    }
    return (*web_app(request), stray)


async def test_a_render_outside_its_namespace_is_refused_whole() -> None:
    """A render with one object outside the deployment's namespace applies nothing, fails
    permanently and names the object and the rule."""
    world = World()
    world.renderer.manifests = kube_system_config
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.cluster.applied == []
    assert world.current.next_attempt_at is None
    assert world.current.status_message == (
        "refused by policy, nothing applied: ConfigMap kube-system/pwn: namespace 'kube-system' "
        "is not allowed for deployment web/prod (allowed: its own web-prod)"
    )


async def test_the_policy_can_allow_another_namespace() -> None:
    """The same render deploys when the ops repo's policy allows kube-system."""
    world = World()
    world.renderer.manifests = kube_system_config
    world.store.policies[world.row.ops_repo_id] = RepoPolicy(namespaces=("kube-system",))
    assert (await world.attempt()).status == "healthy"


async def test_an_object_owned_by_another_deployment_is_never_taken_over() -> None:
    """Two deployments rendering the same object: the second fails naming both, and the
    first's object is left as it is."""
    world = World()
    world.store.policies[world.row.ops_repo_id] = RepoPolicy(namespaces=("shared",))
    world.renderer.manifests = lambda r: (
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shared"},
            "data": {"owner": r.project},
        },
    )
    assert (await world.attempt()).status == "healthy"
    canary = world.store.add_deployment(project="canary", environment="prod", image_ref="c:1")
    [claimed] = await world.store.claim(daemon_id=DAEMON, limit=1, lease_s=60)
    assert claimed.id == canary.id
    outcome = await run_attempt(
        claimed,
        store=world.store,
        cluster=world.cluster,
        checkout=world.checkout,
        options=options(world.renderer),
        superseded=lambda: False,
    )
    assert outcome.status == "failed"
    assert outcome.message == (
        "ConfigMap shared/settings belongs to deployment web/prod: deployment canary/prod may "
        "not take over another deployment's objects (nothing applied)"
    )
    [settings] = [o for o in world.cluster.objects.values() if o["kind"] == "ConfigMap"]
    assert settings["data"] == {"owner": "web"}
    assert world.cluster.applied.count(ObjectRef("v1", "ConfigMap", "settings", "shared")) == 1


async def test_a_rollback_finishing_after_a_newer_desired_state_leaves_it() -> None:
    """A pipeline's image written while the rollback rolls out wins; the rollback is recorded
    healthy and the newer generation is left to reconcile."""
    world = World()
    await world.attempt()
    world.store.set_desired(world.row.id, image_ref="web:2")
    await world.attempt()
    world.store.set_desired(world.row.id, desired_status="rollback")
    cluster = world.cluster
    apply = cluster.apply

    async def apply_then_pipeline_writes(obj: Any, *, field_manager: str) -> dict[str, Any]:
        if world.current.desired_status == "rollback":
            world.store.set_desired(world.row.id, image_ref="web:3", desired_status="active")
        return await apply(obj, field_manager=field_manager)

    cluster.apply = apply_then_pipeline_writes  # type: ignore[method-assign]
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    assert (world.current.image_ref, world.current.current_image_ref) == ("web:3", "web:1")
    assert world.current.observed_generation != world.current.generation
    assert world.store.history_of(world.row.id)[-1].action == "rollback"


async def test_a_render_failure_leaves_what_the_cluster_runs() -> None:
    """A render failure after a healthy deploy keeps current_image_ref and the digest."""
    world = World()
    await world.attempt()
    digest = world.current.applied_digest
    world.store.set_desired(world.row.id, image_ref="web:2")
    world.renderer.errors.append(RenderError("unexpected '}'"))
    await world.attempt()
    assert world.current.current_status == "failed"
    assert (world.current.current_image_ref, world.current.applied_digest) == ("web:1", digest)


async def test_an_unforeseen_exception_becomes_a_recorded_failed_attempt() -> None:
    """A bug in any stage is this deployment's failed attempt, with the exception in words and
    a retry scheduled: never a crash, never a silent re-claim."""
    world = World()
    world.renderer.errors.append(RuntimeError("boom"))
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert world.current.status_message == "internal error: RuntimeError: boom"
    assert world.current.next_attempt_at is not None
    assert [h.status for h in world.store.history_of(world.row.id)] == ["failed"]


async def test_a_repo_with_a_service_account_applies_as_it() -> None:
    """When the ops repo's policy names a ServiceAccount, every apply is made as that
    ServiceAccount (impersonation), so the cluster's RBAC bounds the templates too."""
    world = World()
    world.store.policies[world.row.ops_repo_id] = RepoPolicy(service_account="team-a/deployer")
    assert (await world.attempt()).status == "healthy"
    users = {user for _ref, user in world.cluster.applied_as}
    assert users == {"system:serviceaccount:team-a:deployer"}
