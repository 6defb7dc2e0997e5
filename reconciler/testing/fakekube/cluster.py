"""FakeKube: the server, its controllers and the knobs tests turn, in one object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from .controllers import ClusterControllers, ControllerManager, Workloads, bootstrap
from .faults import Faults, RequestRecord
from .objects import clone
from .registry import Registry
from .server import ApiServer
from .store import HISTORY_SIZE

#: kube-apiserver's watch cache sends bookmarks about once a minute.
DEFAULT_BOOKMARK_INTERVAL_S = 60.0


class FakeKube:
    """A Kubernetes API server for tests and local runs, with controllers that roll things out.

    ``rollout_delay_s`` is how long a Pod takes to become Ready; ``time_factor`` scales the
    durations objects declare (progressDeadlineSeconds, minReadySeconds, back-offs ...), so
    0.01 makes them 100 times shorter.  ``watch_history`` is how many events per resource a
    watch can replay (older resourceVersions get 410 Expired); ``bookmark_interval_s`` how
    often watches that allow bookmarks get one (kube-apiserver: about a minute).  All of them,
    and ``faults``, may be changed while it runs.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rollout_delay_s: float = 0.2,
        time_factor: float = 1.0,
        watch_history: int = HISTORY_SIZE,
        bookmark_interval_s: float = DEFAULT_BOOKMARK_INTERVAL_S,
    ) -> None:
        self.host = host
        self.port = port
        self.rollout_delay_s = rollout_delay_s
        self.time_factor = time_factor
        self.bookmark_interval_s = bookmark_interval_s
        self.faults = Faults()
        self.request_log: list[RequestRecord] = []
        #: When set, the log keeps about this many recent records (for long-running servers).
        self.request_log_limit: int | None = None
        self.url = ""
        self.registry = Registry()
        self.registry.store.history_size = watch_history
        self.controllers = ControllerManager(self.registry, self)
        ClusterControllers(self.controllers)
        Workloads(self.controllers)
        bootstrap(self.registry)
        self._server = ApiServer(self.registry, settings=self, host_port=self._host_port)
        self._runner: web.AppRunner | None = None

    @property
    def watch_history(self) -> int:
        """How many events per resource a watch can replay (the store's history)."""
        return self.registry.store.history_size

    @watch_history.setter
    def watch_history(self, size: int) -> None:
        self.registry.store.history_size = size

    def _host_port(self) -> str:
        return self.url.removeprefix("http://")

    async def start(self) -> None:
        """Binds the port (0 picks a free one) and starts serving and reconciling."""
        if self._runner is not None:
            return
        runner = web.AppRunner(
            self._server.application(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        self.url = f"http://{self.host}:{self.port}"
        self._server.watches.closing = False
        self.controllers.start()

    async def stop(self) -> None:
        """Ends watches, stops the controllers and closes the port."""
        if self._runner is None:
            return
        self._server.watches.closing = True
        self.registry.store.close_watchers()
        await self.controllers.stop()
        for task in list(self._server.watches.tasks):
            task.cancel()
        await asyncio.sleep(0)
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeKube:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def errors(self) -> list[str]:
        """Unexpected exceptions in the server or the controllers (fakekube's own bugs)."""
        return [*self._server.errors, *self.controllers.errors]

    def write_kubeconfig(self, path: Path) -> Path:
        """Writes a kubeconfig for this server (current context ``fakekube``) and returns it."""
        if not self.url:
            raise RuntimeError("start FakeKube before writing its kubeconfig")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fakekube", "cluster": {"server": self.url}}],
            "users": [{"name": "fakekube", "user": {"token": "fakekube"}}],
            "contexts": [
                {
                    "name": "fakekube",
                    "context": {"cluster": "fakekube", "user": "fakekube", "namespace": "default"},
                }
            ],
            "current-context": "fakekube",
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def get_object(
        self, *, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of a stored object (as its API version shows it), or None."""
        resource = self.registry.types.by_kind(api_version, kind)
        if resource is None:
            return None
        found = self.registry.find(resource, (namespace or "") if resource.namespaced else "", name)
        if found is None:
            return None
        presented: dict[str, Any] = clone(self.registry.present(resource, found))
        return presented
