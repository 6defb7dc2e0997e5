"""`reconciler diff` against fakekube over HTTP: a dry run of what the daemon would apply."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from reconciler.cluster.kube import Kube
from reconciler.diff import ObjectDiff, diff_deployment, read_target
from reconciler.model import Deployment
from tests.support.applies import count_applies
from tests.support.pipeline import Pipeline


def _healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


async def _diff(pipeline: Pipeline, environment: str = "prod", **kw: str) -> list[ObjectDiff]:
    target = await read_target(pipeline.store, project="app", environment=environment)
    kube = await Kube.connect(kubeconfig=str(pipeline.kubeconfig))
    try:
        return await diff_deployment(target, cluster=kube, settings=pipeline.settings, **kw)
    finally:
        await kube.close()


async def _diff_process(pipeline: Pipeline, *args: str) -> tuple[int, str, str]:
    """``reconciler diff`` as a process (fakekube keeps serving from this test's loop)."""
    environ = dict(os.environ, DATABASE_URL=pipeline.store.url)
    environ["KUBECONFIG"] = str(pipeline.kubeconfig)
    environ["RECONCILER_REPOS_DIR"] = str(pipeline.settings.repos_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler",
        "diff",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _real_applies(pipeline: Pipeline) -> int:
    return sum(
        1
        for record in pipeline.fakekube.request_log
        if record.method == "PATCH"
        and record.content_type == "application/apply-patch+yaml"
        and not record.dry_run
    )


async def test_diff_shows_an_image_change_before_the_daemon_applies_it(pipeline: Pipeline) -> None:
    """A new image shows as a one-line change of the Deployment (exit 1); nothing is applied."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.stop_daemons()
    await pipeline.deploy("app", image_ref="reg/app:2")
    applied_before = _real_applies(pipeline)
    snapshots_before = sorted(p.name for p in pipeline.settings.repos_dir.rglob("*"))

    code, out, err = await _diff_process(pipeline, "app", "prod")

    assert code == 1, err
    assert "--- live/Deployment app-prod/app\n+++ applied/Deployment app-prod/app\n" in out
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == ["-      - image: reg/app:1", "+      - image: reg/app:2"]
    for left_out in ("managedFields", "resourceVersion", "uid:", "status:", "generation"):
        assert left_out not in out
    assert "# 1 of 4 objects would change" in err
    assert _real_applies(pipeline) == applied_before
    assert count_applies(pipeline.fakekube) > 0
    assert sorted(p.name for p in pipeline.settings.repos_dir.rglob("*")) == snapshots_before
    live = await pipeline.store.get_deployment(project="app", environment="prod")
    assert live is not None and live.current_image_ref == "reg/app:1"

    other = await _diff(pipeline, image_ref="reg/app:1")
    assert [d.text for d in other] == ["", "", "", ""], "--image-ref diffs that image"


async def test_diff_is_empty_after_the_daemon_applies(pipeline: Pipeline) -> None:
    """Once the daemon has applied the desired state, diff shows nothing and exits 0."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:3")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:3"))

    code, out, err = await _diff_process(pipeline, "app", "prod")

    assert (code, out) == (0, ""), err
    assert "# 0 of 4 objects would change" in err
    diffs = await _diff(pipeline)
    assert [str(d.ref) for d in diffs] == [
        "Namespace app-prod",
        "ConfigMap app-prod/app-config",
        "Deployment app-prod/app",
        "Service app-prod/app",
    ]
    assert all(d.text == "" for d in diffs)


async def test_a_deployment_never_applied_is_all_added(pipeline: Pipeline) -> None:
    """Objects that do not exist yet (nor their namespace) show as all added."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.stop_daemons()
    await pipeline.deploy("app", "staging", image_ref="reg/app:9")

    diffs = await _diff(pipeline, "staging")

    by_ref = {str(d.ref): d.text for d in diffs}
    text = by_ref["Deployment app-staging/app"]
    assert text.startswith("--- live/Deployment app-staging/app\n+++ applied/")
    body = text.splitlines()[3:]
    assert body and all(line.startswith("+") for line in body)
    assert "+      - image: reg/app:9" in body
    assert "+    reconciler.io/environment: staging" in body
    assert by_ref["Namespace app-staging"].startswith("--- live/Namespace app-staging")
    code, _out, err = await _diff_process(pipeline, "nope", "prod")
    assert code == 1 and "no deployment nope/prod" in err


async def test_diff_renders_the_commit_the_daemon_synced(pipeline: Pipeline) -> None:
    """A commit the daemon has not synced yet is not in the diff: it renders at last_sha."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    await pipeline.stop_daemons()
    pipeline.ops.write_project("app", replicas=5)
    pipeline.ops.commit("five replicas")

    assert all(d.text == "" for d in await _diff(pipeline))
    changed = [d.text for d in await _diff(pipeline, image_ref="reg/app:2") if d.text]
    assert len(changed) == 1 and "+      - image: reg/app:2" in changed[0]
    assert "replicas" not in changed[0]
