"""Rendering in worker processes: results, errors, a runaway template stopped, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from reconciler.errors import RenderError
from reconciler.ports import RenderRequest
from reconciler.render import ProjectSources, RenderPool, load_project, render
from reconciler.render.service import PoolRenderer
from reconciler.retry import poll_until

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}
data:
  image: {{ image_ref | tojson }}
"""


def _sources(template: str) -> ProjectSources:
    return ProjectSources(
        project_dir="app",
        templates=(("cm.yaml.j2", template),),
        values_base=None,
        values_env=None,
        values_env_name="values-prod.yaml",
    )


async def _render(pool: RenderPool, template: str) -> object:
    return await pool.render(
        _sources(template),
        project="app",
        environment="prod",
        namespace="app-prod",
        image_ref="reg/app:1",
        values_override={},
    )


@pytest.fixture
async def pool() -> RenderPool:
    """A pool with a short deadline, closed after the test."""
    render_pool = RenderPool(workers=1, timeout_s=2.0)
    yield render_pool  # type: ignore[misc]
    await render_pool.close()


async def test_renders_like_render(pool: RenderPool) -> None:
    """A render in the pool gives the same objects as the pure function."""
    rendered = await _render(pool, CONFIGMAP)
    assert rendered.objects[0]["data"] == {"image": "reg/app:1"}  # type: ignore[attr-defined]


async def test_errors_keep_file_and_line(pool: RenderPool) -> None:
    """A render error from a worker keeps its location and message."""
    with pytest.raises(RenderError, match=r"cm.yaml.j2:6: undefined name 'nope'"):
        await _render(pool, CONFIGMAP.replace("image_ref", "nope"))


async def test_runaway_template_is_stopped_and_the_pool_recovers(pool: RenderPool) -> None:
    """A template that loops for ever is stopped at the deadline; the next render works."""
    runaway = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError, match=r"^app: rendering took longer than 2s and was stopped"):
        await _render(pool, CONFIGMAP + runaway)
    rendered = await _render(pool, CONFIGMAP)
    assert rendered.objects[0]["metadata"]["name"] == "app"  # type: ignore[attr-defined]


PARENT = """
import asyncio, sys
from reconciler.render import ProjectSources, RenderPool

async def main():
    pool = RenderPool(workers=1)
    sources = ProjectSources(project_dir="app", templates=(("cm.yaml", sys.argv[1]),),
                             values_base=None, values_env=None, values_env_name="v.yaml")
    await pool.render(sources, project="a", environment="p", namespace="a-p",
                      image_ref="r/i:1", values_override={})
    with open(sys.argv[2], "w") as out:
        out.write(" ".join(str(pid) for pid in pool.worker_pids))
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed daemon leaves no render worker behind."""
    pid_file = tmp_path / "workers"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        CONFIGMAP,
        str(pid_file),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    with contextlib.suppress(TimeoutError):  # the read below then says what is missing
        await poll_until(
            lambda: pid_file.exists() and bool(pid_file.read_text()),
            timeout_s=10.0,
            interval_s=0.05,
        )
    workers = [int(pid) for pid in pid_file.read_text().split()]
    assert workers
    process.send_signal(signal.SIGKILL)
    await process.wait()
    with contextlib.suppress(TimeoutError):  # the assertion below reports the survivors
        await poll_until(
            lambda: not any(_alive(pid) for pid in workers), timeout_s=5.0, interval_s=0.05
        )
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:  # do not leave them behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert alive == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for init to reap it is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


EXAMPLE_REPO = Path(__file__).resolve().parents[3] / "ops_repos_example"
LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
DEADLINE_MESSAGE = "app: rendering took longer than 1s and was stopped (a template loops too long?)"


async def _outcome(pool: RenderPool, template: str) -> str:
    try:
        rendered = await _render(pool, template)
    except RenderError as exc:
        return str(exc)
    return str(rendered.objects[0]["metadata"]["name"])  # type: ignore[attr-defined]


async def test_overruns_fail_alone_and_the_pool_stays_usable() -> None:
    """4 looping and 4 good renders at once on 2 workers: only the looping ones fail."""
    pool = RenderPool(workers=2, timeout_s=1.0)
    try:
        templates = [CONFIGMAP + LOOP] * 4 + [CONFIGMAP] * 4
        outcomes = await asyncio.gather(*(_outcome(pool, t) for t in templates))
        assert outcomes == [DEADLINE_MESSAGE] * 4 + ["app"] * 4
        assert await _outcome(pool, CONFIGMAP) == "app"
    finally:
        await pool.close()


async def test_waiting_in_the_queue_is_not_charged_to_the_deadline() -> None:
    """A good render queued behind two looping ones on 1 worker still succeeds."""
    pool = RenderPool(workers=1, timeout_s=1.0)
    try:
        outcomes = await asyncio.gather(
            _outcome(pool, CONFIGMAP + LOOP),
            _outcome(pool, CONFIGMAP + LOOP),
            _outcome(pool, CONFIGMAP),
        )
        assert outcomes == [DEADLINE_MESSAGE, DEADLINE_MESSAGE, "app"]
    finally:
        await pool.close()


async def test_closing_fails_waiting_and_running_renders_clearly() -> None:
    """Renders running or queued at close fail saying so; a later render starts afresh."""
    pool = RenderPool(workers=1, timeout_s=30.0)
    try:
        running = asyncio.create_task(_outcome(pool, CONFIGMAP + LOOP))
        waiting = asyncio.create_task(_outcome(pool, CONFIGMAP))
        await poll_until(lambda: bool(pool.worker_pids), timeout_s=30.0, interval_s=0.05)
        await pool.close()
        assert await running == "app: the render pool was closed during this render"
        assert await waiting == "app: the render pool was closed before this render started"
        assert await _outcome(pool, CONFIGMAP) == "app"
    finally:
        await pool.close()


def _project(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / "apps" / "web").mkdir(parents=True, exist_ok=True)
        (tmp_path / "apps" / "web" / name).write_text(text)
    return tmp_path


async def _render_project(
    pool: RenderPool, checkout: Path, environment: str = "prod", *, immutable: bool = False
) -> object:
    return await pool.render_project(
        checkout=checkout,
        subdir="apps",
        project="web",
        environment=environment,
        namespace="web-prod",
        image_ref="reg/web:1",
        values_override={},
        immutable=immutable,
    )


async def test_a_project_is_read_and_rendered_in_the_worker(
    pool: RenderPool, tmp_path: Path
) -> None:
    """render_project loads the files in the worker and renders them with their values."""
    checkout = _project(
        tmp_path,
        **{"cm.yaml.j2": CONFIGMAP + "  level: {{ values.level }}\n", "values.yaml": "level: x\n"},
    )
    rendered = await _render_project(pool, checkout)
    assert rendered.objects[0]["data"] == {"image": "reg/web:1", "level": "x"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("immutable", [True, False])
async def test_a_project_of_an_immutable_checkout_is_read_once(
    pool: RenderPool, tmp_path: Path, immutable: bool
) -> None:
    """A worker keeps what it read from a snapshot (a render at the same commit reads no
    files); from any other checkout it reads the files again every time."""
    values = {
        "cm.yaml.j2": CONFIGMAP + "  level: {{ values.level }}\n",
        "values.yaml": "level: x\n",
    }
    checkout = _project(tmp_path, **values)
    await _render_project(pool, checkout, immutable=immutable)
    (checkout / "apps" / "web" / "values.yaml").write_text("level: y\n")
    again = await _render_project(pool, checkout, immutable=immutable)
    expected = "x" if immutable else "y"
    assert again.objects[0]["data"]["level"] == expected  # type: ignore[attr-defined]


async def test_loading_errors_come_back_from_the_worker(pool: RenderPool, tmp_path: Path) -> None:
    """An over-budget project says so (not a timeout); an undeclared environment is named."""
    checkout = _project(
        tmp_path,
        **{f"t{i}.yaml": "#" * (1024 * 1024) for i in range(9)},
        **{"values-prod.yaml": "a: 1\n"},
    )
    with pytest.raises(RenderError) as caught:
        await _render_project(pool, checkout)
    assert str(caught.value) == (
        "project 'web' is larger than the 8 MiB budget (templates and values files: 9.0 MiB)"
    )
    with pytest.raises(RenderError) as caught:
        await _render_project(pool, checkout, environment="prdo")
    assert str(caught.value) == (
        "environment 'prdo' is not declared by project 'web' (it has values files for: prod)"
    )


async def test_pool_renderer_renders_the_example_repo_like_render() -> None:
    """PoolRenderer (the daemon's renderer) gives the objects and digest of a direct render."""
    example = EXAMPLE_REPO
    renderer = PoolRenderer(timeout_s=30.0)
    try:
        rendered = await renderer.render(
            RenderRequest(
                checkout=example,
                subdir="",
                project="web",
                environment="prod",
                namespace="web-prod",
                image_ref="reg/web:1",
                values_override={},
            )
        )
    finally:
        await renderer.close()
    direct = render(
        load_project(checkout=example, path="", project="web", environment="prod"),
        project="web",
        environment="prod",
        namespace="web-prod",
        image_ref="reg/web:1",
        values_override={},
    )
    assert rendered.objects == direct.objects
    assert rendered.digest == direct.digest


async def test_looping_renders_do_not_hold_up_the_others() -> None:
    """With more looping templates than workers, a spare worker takes the good render: it
    finishes while every looping one is still running, long before their deadline."""
    pool = RenderPool(workers=2, timeout_s=60.0, spares=4, slow_after_s=0.2)
    try:
        loops = [asyncio.create_task(_outcome(pool, CONFIGMAP + LOOP)) for _ in range(4)]
        await asyncio.sleep(0.05)  # the looping renders are queued first
        good = asyncio.create_task(_outcome(pool, CONFIGMAP))
        done, _ = await asyncio.wait([good, *loops], return_when=asyncio.FIRST_COMPLETED)
        assert done == {good}
        assert good.result() == "app"
        assert not any(loop.done() for loop in loops)
        assert len(pool.worker_pids) <= 2 + 4
    finally:
        await pool.close()
    assert {loop.result() for loop in loops} == {
        "app: the render pool was closed during this render"
    }
