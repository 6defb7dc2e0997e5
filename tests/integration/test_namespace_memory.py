"""The daemon applies a deployment's implicit Namespace once, not on every attempt, and again
when the namespace was deleted: fakekube over HTTP, real PostgreSQL, real git."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.cluster.kube import Kube
from reconciler.model import Deployment, ObjectRef
from tests.support.pipeline import Pipeline
from tests.support.waiting import wait_until

NAMESPACE = ObjectRef("v1", "Namespace", "app-prod", None)


def _healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


def _namespace_applies(pipeline: Pipeline, name: str) -> int:
    return pipeline.applies(kind_plural="namespaces", name=name)


async def _new_image(pipeline: Pipeline, project: str, image: str) -> Deployment:
    await pipeline.store.set_desired(project=project, environment="prod", image_ref=image)
    return await pipeline.wait_for(project, until=_healthy_on(image))


async def test_the_second_attempt_sends_no_namespace_apply(pipeline: Pipeline) -> None:
    """A new image rolls out without applying the Namespace the first attempt created."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    assert _namespace_applies(pipeline, "app-prod") == 1
    await _new_image(pipeline, "app", "reg/app:2")
    assert _namespace_applies(pipeline, "app-prod") == 1
    assert pipeline.applies(name="app") == 2


async def test_a_deleted_namespace_is_recreated_by_the_next_attempt(pipeline: Pipeline) -> None:
    """After ``kubectl delete namespace`` has finished, the next attempt creates it again and
    ends healthy with one history row."""
    await pipeline.start_daemon(watch=False)  # nothing heals the deletion before the update
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    d = await _new_image(pipeline, "app", "reg/app:2")
    kube = await Kube.connect(kubeconfig=str(pipeline.kubeconfig))
    try:
        assert await kube.delete(NAMESPACE)

        async def gone() -> bool:
            return await kube.get(NAMESPACE) is None

        await wait_until(gone, timeout_s=20, what="namespace app-prod to be deleted")
    finally:
        await kube.close()
    assert len(await pipeline.store.history(deployment_id=d.id)) == 2
    await _new_image(pipeline, "app", "reg/app:3")
    history = await pipeline.store.history(deployment_id=d.id)
    assert [(h.image_ref, h.status) for h in history] == [
        ("reg/app:3", "healthy"),
        ("reg/app:2", "healthy"),
        ("reg/app:1", "healthy"),
    ]
    assert _namespace_applies(pipeline, "app-prod") == 2
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:3"


async def test_two_deployments_sharing_nothing_each_apply_their_namespace_once(
    pipeline: Pipeline,
) -> None:
    """Two deployments in their own namespaces roll out twice; each Namespace is applied once."""
    pipeline.ops.write_project("other")
    pipeline.ops.commit("other")
    await pipeline.start_daemon()
    for project in ("app", "other"):
        await pipeline.deploy(project, image_ref="reg/app:1")
    for project in ("app", "other"):
        await pipeline.wait_for(project, until=_healthy_on("reg/app:1"))
    for project in ("app", "other"):
        await _new_image(pipeline, project, "reg/app:2")
    assert _namespace_applies(pipeline, "app-prod") == 1
    assert _namespace_applies(pipeline, "other-prod") == 1
    for project in ("app", "other"):
        live = pipeline.fakekube.get_object(
            api_version="apps/v1", kind="Deployment", name=project, namespace=f"{project}-prod"
        )
        assert live is not None
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:2"
