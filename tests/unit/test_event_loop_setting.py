"""RECONCILER_EVENT_LOOP: uvloop by default, the standard loop when asked, anything else
refused by name."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from reconciler import cli
from reconciler.errors import ConfigError
from reconciler.settings import from_env


def running_loop_type(event_loop: str | None) -> type[asyncio.AbstractEventLoop]:
    """The type of loop the CLI would run its handlers on, for this setting."""
    settings = from_env({} if event_loop is None else {"RECONCILER_EVENT_LOOP": event_loop})

    async def loop_type() -> type[asyncio.AbstractEventLoop]:
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=cli._loop_factory(settings)) as runner:
        return runner.run(loop_type())


def test_the_cli_runs_on_uvloop_by_default() -> None:
    """Without the setting, commands run on uvloop's loop."""
    assert running_loop_type(None) is uvloop.Loop


@pytest.mark.parametrize("value", ["asyncio", "AsyncIO"])
def test_asyncio_brings_the_standard_loop_back(value: str) -> None:
    """``asyncio`` (any case) runs commands on the standard library's loop."""
    loop_type = running_loop_type(value)
    assert loop_type is not uvloop.Loop
    assert loop_type.__module__.startswith("asyncio")


def test_another_loop_is_refused_by_name() -> None:
    """An unknown loop is a configuration error naming the setting and the value."""
    with pytest.raises(
        ConfigError, match="RECONCILER_EVENT_LOOP must be 'uvloop' or 'asyncio', got 'trio'"
    ):
        from_env({"RECONCILER_EVENT_LOOP": "trio"})
