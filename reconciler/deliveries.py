"""The deliverer: POSTs the outbox ``event_deliveries`` to outgoing webhooks, beside the loop.

The events trigger queues one row per transition and matching webhook, in the transaction
that writes the transition, and NOTIFYs ``reconciler_deliveries``.  The deliverer wakes on that
NOTIFY (and every poll interval, the guarantee), claims due rows with ``FOR UPDATE SKIP
LOCKED`` (several daemons share the outbox; each row goes to one), and POSTs each with a
timeout, at most ``webhook_concurrency`` at once.  A 2xx answer delivers; anything else is
retried with backoff and jitter until the attempts run out, then it failed.  It runs in a task
of its own and bounds its own work: a receiver that hangs costs one slot for the timeout,
never a reconcile, and on shutdown what is in flight is abandoned and given back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from reconciler.db import DELIVERIES_CHANNEL, Listener, Store
from reconciler.delivery_format import RetryPolicy, Verdict, after_attempt, body_for
from reconciler.delivery_format import request_headers as headers_for
from reconciler.errors import DatabaseError
from reconciler.logs import get_logger
from reconciler.model import DueDelivery
from reconciler.ports import DeliveryStore, Notifications
from reconciler.repos.urls import redact, redact_url
from reconciler.retry import Backoff
from reconciler.settings import Settings

log = get_logger("deliveries")

ListenFactory = Callable[[Callable[[str], None], Callable[[], None]], Notifications]
"""Given the NOTIFY and the (re)connected callbacks, a LISTEN on ``reconciler_deliveries``."""

_LEASE_MARGIN_S = 30.0
"""A claim outlives the POST's timeout by this much, so recording the outcome has time."""
_STOP_WAIT_S = 3.0
_MAX_ERROR = 500
_TOKEN_SEGMENT = re.compile(r"(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}")


def shown_url(url: str) -> str:
    """``url`` fit for an error message: no user or password, no credential-like query value,
    and no path segment that looks like a token (a Slack webhook's path is its credential)."""
    return _TOKEN_SEGMENT.sub("***", redact_url(url))


class Poster(Protocol):
    """Sends one POST and returns the answer's status code; raises on no answer."""

    async def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> int: ...

    async def close(self) -> None: ...


class HttpPoster:
    """:class:`Poster` over one aiohttp session; redirects are not followed (a redirect is not
    a delivery) and the answer's body is not read."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            url,
            data=body,
            headers=dict(headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            return response.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True, kw_only=True)
class DeliveryOptions:
    """How one daemon delivers: its name in claims, the POST timeout, slots and retries."""

    daemon_id: str
    timeout_s: float = 5.0
    concurrency: int = 8
    poll_interval_s: float = 10.0
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=8, base_s=5.0, max_s=600.0)
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryOptions:
        return cls(
            daemon_id=settings.daemon_id,
            timeout_s=settings.webhook_timeout_s,
            concurrency=settings.webhook_concurrency,
            poll_interval_s=settings.poll_interval_s,
            retry=RetryPolicy(
                max_attempts=settings.webhook_max_attempts,
                base_s=settings.webhook_retry_base_s,
                max_s=settings.webhook_retry_max_s,
            ),
        )


class Deliverer:
    """Delivers the outbox until :meth:`stop`; never raises out of :meth:`run`."""

    def __init__(
        self,
        *,
        store: DeliveryStore,
        options: DeliveryOptions,
        listen: ListenFactory | None = None,
        poster: Poster | None = None,
        outcome: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._options = options
        self._listen = listen
        self._poster = poster or HttpPoster()
        self._outcome = outcome or (lambda _outcome: None)
        self._clock = clock
        self._rng = rng
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._retries_due: list[float] = []
        """A heap of when the retries this deliverer scheduled are due (monotonic): it looks
        then, not only at the next poll."""
        self.listener: Notifications | None = None

    @property
    def in_flight(self) -> int:
        """POSTs in flight now."""
        return len(self._tasks)

    def counted(self, outcome: Callable[[str], None]) -> None:
        """Report each attempt's outcome (delivered, retry, failed) to ``outcome``."""
        self._outcome = outcome

    def wake(self) -> None:
        """Look for due deliveries now (the NOTIFY's callback)."""
        self._wake.set()

    def stop(self) -> None:
        """Make :meth:`run` return: in-flight POSTs are abandoned and their rows given back."""
        self._stop.set()
        self._wake.set()

    async def prune(self, *, keep_days: float) -> int:
        """Delete finished deliveries older than ``keep_days`` (the history retention)."""
        return await self._store.prune_deliveries(keep_days=keep_days)

    async def run(self) -> None:
        """Deliver until :meth:`stop`."""
        listen_task: asyncio.Task[None] | None = None
        if self._listen is not None:
            self.listener = self._listen(lambda _payload: self.wake(), self.wake)
            listen_task = asyncio.create_task(
                self.listener.run(stop=self._stop), name="listen-deliveries"
            )
        try:
            await self._loop()
        finally:
            await self._shut_down(listen_task)

    async def _loop(self) -> None:
        backoff = Backoff(base_s=1.0, max_s=self._options.poll_interval_s)
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self._claim_and_start()
                failures = 0
                delay = self._until_next_look()
            except Exception as exc:  # a database outage, or a bug: never the daemon's end
                failures += 1
                delay = backoff.delay(failures)
                error = str(exc) if isinstance(exc, DatabaseError) else repr(exc)
                log.warning("delivery_claim_failed", error=error, retry_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _until_next_look(self) -> float:
        """The poll interval, or less when a retry falls due sooner (those due by now were
        just claimed)."""
        now = time.monotonic()
        while self._retries_due and self._retries_due[0] <= now:
            heapq.heappop(self._retries_due)
        if not self._retries_due:
            return self._options.poll_interval_s
        return min(self._options.poll_interval_s, self._retries_due[0] - now)

    async def _claim_and_start(self) -> None:
        free = self._options.concurrency - len(self._tasks)
        if free <= 0:
            return
        claimed = await self._store.claim_deliveries(
            daemon_id=self._options.daemon_id,
            limit=free,
            lease_s=self._options.timeout_s + _LEASE_MARGIN_S,
        )
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery), name=f"deliver-{delivery.id}")
            self._tasks[delivery.id] = task
            task.add_done_callback(functools.partial(self._finished, delivery.id))
        if len(claimed) == free:
            self._wake.set()  # there may be more due once a slot frees

    def _finished(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(delivery_id, None)
        self._wake.set()

    async def _deliver(self, delivery: DueDelivery) -> None:
        code, error = await self._attempt(delivery)
        verdict = after_attempt(
            code=code, attempts=delivery.attempts, policy=self._options.retry, rng=self._rng
        )
        try:
            await self._store.finish_delivery(
                delivery_id=delivery.id,
                daemon_id=self._options.daemon_id,
                status=verdict.status,
                code=code,
                error=error,
                retry_in_s=verdict.retry_in_s,
            )
        except DatabaseError as exc:
            # Its lease runs out and it is tried again: at least once, never lost.
            log.warning("delivery_not_recorded", delivery_id=delivery.id, error=str(exc))
            return
        if verdict.retry_in_s is not None:
            heapq.heappush(self._retries_due, time.monotonic() + verdict.retry_in_s)
        self._report(delivery, verdict, code=code, error=error)

    async def _attempt(self, delivery: DueDelivery) -> tuple[int | None, str | None]:
        """POST it once: the answer's code (None without one) and the error in words (None
        when delivered)."""
        where = f"POST {shown_url(delivery.url)}"
        timeout_s = self._options.timeout_s
        try:
            body = body_for(delivery.format, delivery.event)
            headers = headers_for(
                body=body,
                secret=delivery.secret,
                timestamp=int(self._clock()),
                delivery_id=delivery.id,
            )
            async with asyncio.timeout(timeout_s):
                code = await self._poster.post(
                    delivery.url, body=body, headers=headers, timeout_s=timeout_s
                )
        except TimeoutError:
            return None, f"{where}: no answer within {timeout_s:g} s"
        except Exception as exc:  # whatever the receiver or the URL does, it is only an error
            detail = _clean(str(exc) or type(exc).__name__, url=delivery.url)
            return None, f"{where}: {type(exc).__name__}: {detail}"
        if 200 <= code < 300:
            return code, None
        return code, f"{where}: answered HTTP {code}"

    def _report(
        self, delivery: DueDelivery, verdict: Verdict, *, code: int | None, error: str | None
    ) -> None:
        outcome = "retry" if verdict.status == "pending" else verdict.status
        self._outcome(outcome)
        fields = {
            "delivery_id": delivery.id,
            "webhook": delivery.webhook,
            "attempt": delivery.attempts,
            "code": code,
        }
        if verdict.status == "delivered":
            log.info("webhook_delivered", **fields)
        else:
            retry_in_s = None if verdict.retry_in_s is None else round(verdict.retry_in_s, 2)
            log.warning(
                "webhook_failed" if outcome == "failed" else "webhook_retry",
                **fields,
                error=error,
                retry_in_s=retry_in_s,
            )

    async def _shut_down(self, listen_task: asyncio.Task[None] | None) -> None:
        self._stop.set()
        abandoned = dict(self._tasks)
        for task in abandoned.values():
            task.cancel()
        if abandoned:
            await asyncio.wait(abandoned.values(), timeout=_STOP_WAIT_S)
            try:
                async with asyncio.timeout(_STOP_WAIT_S):
                    await self._store.release_deliveries(
                        daemon_id=self._options.daemon_id,
                        ids=list(abandoned),
                        error="the daemon shut down before the receiver answered",
                    )
            except (DatabaseError, TimeoutError) as exc:
                # Their leases run out and they are tried again.
                log.warning("deliveries_not_released", ids=list(abandoned), error=str(exc))
        with contextlib.suppress(Exception):
            await self._poster.close()
        if listen_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listen_task, timeout=_STOP_WAIT_S)


def deliverer_for(store: object, *, settings: Settings) -> Deliverer | None:
    """The daemon's deliverer when ``store`` is the database (woken by NOTIFYs on
    reconciler_deliveries); None over another store."""
    if not isinstance(store, Store):
        return None
    database = store

    def listen(on_notify: Callable[[str], None], on_reconnect: Callable[[], None]) -> Listener:
        return Listener(
            url=database.url,
            on_notify=on_notify,
            on_reconnect=on_reconnect,
            log=log.warning,
            channel=DELIVERIES_CHANNEL,
        )

    return Deliverer(store=database, options=DeliveryOptions.from_settings(settings), listen=listen)


def _clean(text: str, *, url: str) -> str:
    """``text`` without ``url``'s credentials, one line, bounded."""
    shown = shown_url(url)
    cleaned = redact(text.replace(url, shown), url=url).replace(redact_url(url), shown)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= _MAX_ERROR else cleaned[: _MAX_ERROR - 3] + "..."
