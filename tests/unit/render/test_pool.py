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
from reconciler.render import ProjectSources, RenderPool
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
        out.write(" ".join(str(pid) for pid in pool._executor()._processes))
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
