"""The attempt checks the Kubernetes schema after render and before admission or any apply."""

from __future__ import annotations

from typing import Any

from reconciler.ports import RenderRequest
from reconciler.testing.memory import InMemoryRenderer, web_app
from tests.support.attempts import World


def string_replicas(request: RenderRequest) -> tuple[dict[str, Any], ...]:
    config, deployment = web_app(request)
    return (config, {**deployment, "spec": {**deployment["spec"], "replicas": "three"}})


async def test_a_schema_violation_fails_permanently_before_anything_is_applied() -> None:
    """A string for an integer fails the attempt, parked, with nothing applied or claimed."""
    world = World()
    world.renderer = InMemoryRenderer(string_replicas)
    outcome = await world.attempt()
    assert outcome.status == "failed"
    assert "object 2: Deployment web-prod/web: spec.replicas: 'three' is not of type" in (
        outcome.message
    )
    assert world.current.next_attempt_at is None
    assert world.cluster.applied == [] and world.cluster.dry_runs == []
    [entry] = world.store.history_of(world.row.id)
    assert entry.status == "failed" and "the Kubernetes 1.32 schema" in entry.message


async def test_a_custom_resource_is_not_checked() -> None:
    """A kind the bundled schema does not know is left to its API server."""

    def with_widget(request: RenderRequest) -> tuple[dict[str, Any], ...]:
        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": request.namespace},
            "spec": {"size": "anything"},
        }
        return (*web_app(request), widget)

    world = World()
    world.renderer = InMemoryRenderer(with_widget)
    outcome = await world.attempt()
    assert outcome.status == "healthy", outcome.message
