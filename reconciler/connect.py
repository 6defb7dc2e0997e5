"""Connecting ``reconciler run`` to its database and cluster: a daemon starting before them
waits (with backoff, logged), ``run --once`` fails at once."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.cluster.kube import Kube
from reconciler.db import Store
from reconciler.errors import DatabaseError, KubernetesError
from reconciler.logs import get_logger
from reconciler.retry import Backoff, retry
from reconciler.settings import Settings

log = get_logger("daemon")

_CONNECT_BACKOFF = Backoff(base_s=0.5, max_s=30.0, jitter=1.0)


def retry_unless_once(event: str, *, once: bool) -> Callable[[BaseException, int], float | None]:
    """Wait out a service that is not there yet (a daemon starting before its database), but
    let ``run --once`` fail at once."""

    def decide(exc: BaseException, attempt: int) -> float | None:
        if once:
            return None
        delay = _CONNECT_BACKOFF.delay(attempt)
        log.warning(event, error=str(exc), retry_in_s=delay)
        return delay

    return decide


async def connect_store(
    url: str, *, once: bool, pool_size: int, max_overflow: int | None = None
) -> Store:
    """The database, waited for (unless ``once``) while it does not answer."""
    return await retry(
        lambda: Store.connect(url, pool_size=pool_size, max_overflow=max_overflow),
        decide=retry_unless_once("database_unavailable", once=once),
        catch=(DatabaseError,),
    )


async def connect_kube(settings: Settings, *, once: bool) -> Kube:
    """The cluster, waited for (unless ``once``) while it does not answer."""
    return await retry(
        lambda: Kube.connect(
            kubeconfig=settings.kubeconfig, request_timeout_s=settings.kube_timeout_s
        ),
        decide=retry_unless_once("kubernetes_unavailable", once=once),
        catch=(KubernetesError,),
    )
