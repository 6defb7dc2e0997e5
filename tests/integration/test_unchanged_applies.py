"""Unchanged objects are not applied again, against fakekube over HTTP with the real daemon:
only what a render changed is sent, and whatever someone else touched is sent as before."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.model import Deployment
from tests.support.pipeline import Pipeline
from tests.support.waiting import eventually

NS = "app-prod"


def healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


def _counts(pipeline: Pipeline) -> dict[str, int]:
    return {
        plural: pipeline.applies(kind_plural=plural)
        for plural in ("deployments", "configmaps", "services")
    }


async def _rollout(pipeline: Pipeline, image: str, **desired: object) -> dict[str, int]:
    """Deploy ``image`` (and ``desired``) and wait until healthy: the applies sent, by kind."""
    before = _counts(pipeline)
    await pipeline.deploy("app", image_ref=image, **desired)
    await pipeline.wait_for("app", until=healthy_on(image))
    return {plural: n - before[plural] for plural, n in _counts(pipeline).items()}


def _greeting(pipeline: Pipeline) -> object:
    live = pipeline.fakekube.get_object(
        api_version="v1", kind="ConfigMap", name="app-config", namespace=NS
    )
    assert live is not None
    return live["data"]["greeting"]


async def test_an_image_update_applies_the_deployment_alone(pipeline: Pipeline) -> None:
    """A new image sends one apply, the Deployment's: the ConfigMap and the Service the watch
    shows as applied are left alone, and the rollout still ends healthy on the new image."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert await _rollout(pipeline, "reg/app:2") == {
        "deployments": 1,
        "configmaps": 0,
        "services": 0,
    }


async def test_a_changed_value_is_applied(pipeline: Pipeline) -> None:
    """A values change that alters the ConfigMap applies it (and the unchanged Service not)."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    sent = await _rollout(pipeline, "reg/app:2", values_override={"greeting": "hi"})
    assert (sent["configmaps"], sent["services"]) == (1, 0)
    assert _greeting(pipeline) == "hi"


async def test_an_object_someone_else_changed_is_applied_by_the_next_rollout(
    pipeline: Pipeline,
) -> None:
    """With healing off, a ConfigMap kubectl changed stays drifted until the next rollout,
    which applies it (kubectl took the field over: it is not in sync) and puts it back."""
    await pipeline.start_daemon(self_heal=False)
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.kubectl().run(
        "-n", NS, "patch", "configmap", "app-config", "-p", '{"data":{"greeting":"edited"}}'
    )
    await pipeline.wait_for("app", until=lambda d: d.current_status == "drifted")
    sent = await _rollout(pipeline, "reg/app:2")
    assert (sent["configmaps"], sent["services"]) == (1, 0)
    assert _greeting(pipeline) == "hello"


async def test_a_value_changed_back_right_after_its_apply_is_applied_again(
    pipeline: Pipeline,
) -> None:
    """Values changed, and changed back as soon as fakekube holds the change (the watch may
    not have shown it yet): the change back is applied too, and the ConfigMap ends as the
    last rollout rendered it."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    before = _counts(pipeline)
    await pipeline.deploy("app", image_ref="reg/app:2", values_override={"greeting": "hi"})
    await eventually(lambda: _greeting(pipeline) == "hi", within=30, interval_s=0.005)
    await pipeline.deploy("app", image_ref="reg/app:3")
    await pipeline.wait_for("app", until=healthy_on("reg/app:3"))
    assert _greeting(pipeline) == "hello"
    assert _counts(pipeline)["configmaps"] == before["configmaps"] + 2


async def test_with_the_setting_off_every_object_is_applied(pipeline: Pipeline) -> None:
    """RECONCILER_SKIP_UNCHANGED_APPLIES=false: every rendered object is applied each time."""
    await pipeline.start_daemon(skip_unchanged_applies=False)
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert await _rollout(pipeline, "reg/app:2") == {
        "deployments": 1,
        "configmaps": 1,
        "services": 1,
    }


async def test_the_first_attempt_after_another_daemons_applies_every_object(
    pipeline: Pipeline,
) -> None:
    """A daemon taking over a deployment another daemon wrote last applies every object (that
    daemon's writes may not have reached this one's watch yet); its own next attempt leaves the
    unchanged ones out again."""
    await pipeline.start_daemon(daemon_id="daemon-a", repos_dir=pipeline.settings.repos_dir / "a")
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.stop_daemons()
    await pipeline.start_daemon(daemon_id="daemon-b", repos_dir=pipeline.settings.repos_dir / "b")
    assert await _rollout(pipeline, "reg/app:2") == {
        "deployments": 1,
        "configmaps": 1,
        "services": 1,
    }
    assert await _rollout(pipeline, "reg/app:3") == {
        "deployments": 1,
        "configmaps": 0,
        "services": 0,
    }
