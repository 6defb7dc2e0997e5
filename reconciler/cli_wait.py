"""``reconciler wait PROJECT ENV``: block until a deployment is done, failed, or the time is up.

It LISTENs on ``reconciler_events`` before it reads the row (so no transition is lost between
the two), then decides on every event for the deployment and on a read of the row every
:data:`POLL_INTERVAL_S` and after every reconnect (NOTIFYs sent while the connection was down
are gone).  The decision is :func:`reconciler.waiter.decide`'s.  Exit codes: 0 done, 1 failed
(the status message on stderr), 2 timed out (what it last saw on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from reconciler.cli_day_two import Commands, connect
from reconciler.errors import DatabaseError, InputError
from reconciler.output import printable
from reconciler.settings import Settings
from reconciler.waiter import BadEvent, Outcome, Seen, Verdict, decide, describe, parse_event

if TYPE_CHECKING:
    from reconciler.db import Store

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
POLL_INTERVAL_S = 2.0
"""How often the row is read besides the events: NOTIFYs are lost while the connection is."""
DEFAULT_TIMEOUT_S = 600.0
_RECONNECTED = None
"""What the inbox receives when the LISTEN is (re)established: read the row now."""


def add_wait_command(commands: Commands) -> None:
    """``reconciler wait PROJECT ENV [--generation N] [--timeout S]``."""
    wait = commands.add_parser(
        "wait",
        help="wait until a deployment is healthy (or stopped/deleted) at its generation: "
        "exit 0; failed with no retry left: 1; timed out: 2",
    )
    wait.add_argument("project")
    wait.add_argument("environment")
    wait.add_argument(
        "--generation",
        type=int,
        metavar="N",
        help="the generation to wait for (default: the row's when the wait starts, following "
        "newer ones written meanwhile; with N, a newer generation written before N is done "
        "fails the wait)",
    )
    wait.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up after this long, exit 2 (default {DEFAULT_TIMEOUT_S:g})",
    )
    wait.set_defaults(handler=_wait)


async def _wait(args: argparse.Namespace, settings: Settings) -> int:
    if not args.timeout > 0:
        raise InputError("--timeout must be a positive number of seconds")
    if args.generation is not None and args.generation < 1:
        raise InputError("--generation must be 1 or more")
    store = await connect(settings)
    try:
        waiting = _Wait(
            store=store,
            project=args.project,
            environment=args.environment,
            progress=Progress(stream=sys.stdout),
        )
        return await waiting.run(generation=args.generation, timeout_s=args.timeout)
    finally:
        await store.close()


@dataclass
class Progress:
    """On a TTY one updating line; otherwise one line per change of what was seen."""

    stream: TextIO
    _last: str = ""
    _open_line: bool = False

    def show(self, line: str) -> None:
        if line == self._last:
            return
        self._last = line
        text = printable(line)
        if self.stream.isatty():
            self.stream.write(f"\r\x1b[K{text}")
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


@dataclass(kw_only=True)
class _Wait:
    """One wait: the store for reads, the LISTEN's inbox, the last thing seen."""

    store: Store
    project: str
    environment: str
    progress: Progress
    inbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    last_seen: Seen | None = None
    last_error: str = ""
    next_poll: float = 0.0
    """When the row is read next (the loop's clock), events or not."""

    @property
    def name(self) -> str:
        return f"{self.project}/{self.environment}"

    async def run(self, *, generation: int | None, timeout_s: float) -> int:
        from reconciler.db import EVENTS_CHANNEL, Listener

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        stop = asyncio.Event()
        listener = Listener(
            url=self.store.url,
            channel=EVENTS_CHANNEL,
            on_notify=self.inbox.put_nowait,
            on_reconnect=lambda: self.inbox.put_nowait(_RECONNECTED),
        )
        listening = asyncio.create_task(listener.run(stop=stop, backoff_max_s=POLL_INTERVAL_S))
        try:
            # LISTEN first, then read: a transition committed in between is in the inbox.
            with suppress(TimeoutError):
                await asyncio.wait_for(listener.connected.wait(), timeout=timeout_s)
            if not listener.connected.is_set():
                return self._timed_out(timeout_s, target=generation)
            return await self._follow(generation=generation, deadline=deadline, timeout_s=timeout_s)
        finally:
            stop.set()
            await listening

    async def _follow(self, *, generation: int | None, deadline: float, timeout_s: float) -> int:
        first = await self.store.status_row(project=self.project, environment=self.environment)
        if first is None:
            raise InputError(f"no deployment {self.name}")
        seen = Seen.from_status_row(first)
        verdict = decide(seen, target=generation or seen.generation, follow=generation is None)
        self._see(seen, verdict)
        loop = asyncio.get_running_loop()
        self.next_poll = loop.time() + POLL_INTERVAL_S
        while verdict.outcome is Outcome.WAITING:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self._timed_out(timeout_s, target=verdict.target)
            looked = await self._look(timeout_s=remaining)
            if isinstance(looked, Verdict):  # the row is gone
                verdict = looked
            elif looked is not None:
                verdict = decide(looked, target=verdict.target, follow=generation is None)
                self._see(looked, verdict)
        return self._finish(verdict)

    async def _look(self, *, timeout_s: float) -> Seen | Verdict | None:
        """The next event for this deployment; the row instead when the LISTEN was
        (re)established or a poll is due (every :data:`POLL_INTERVAL_S`, even while other
        deployments' events keep arriving); None when neither told anything."""
        loop = asyncio.get_running_loop()
        until_poll = max(self.next_poll - loop.time(), 0.0)
        with suppress(TimeoutError):
            item = await asyncio.wait_for(self.inbox.get(), timeout=min(until_poll, timeout_s))
            if item is not _RECONNECTED:
                try:
                    seen = parse_event(
                        str(item), project=self.project, environment=self.environment
                    )
                except BadEvent:
                    seen = None  # not the trigger's: anyone may NOTIFY; the poll reads the row
                if seen is not None or loop.time() < self.next_poll:
                    return seen
        self.next_poll = loop.time() + POLL_INTERVAL_S
        try:
            row = await self.store.status_row(project=self.project, environment=self.environment)
        except DatabaseError as exc:
            self.last_error = str(exc)  # the listener reconnects; the deadline bounds this
            return None
        self.last_error = ""
        if row is not None:
            return Seen.from_status_row(row)
        if self.last_seen is not None and self.last_seen.desired_status == "deleted":
            return Verdict(outcome=Outcome.DONE, target=0, reason="deleted, and its row removed")
        return Verdict(
            outcome=Outcome.FAILED, target=0, reason="the deployment row was removed meanwhile"
        )

    def _see(self, seen: Seen, verdict: Verdict) -> None:
        self.last_seen = seen
        self.progress.show(f"{self.name} generation {verdict.target}: {describe(seen)}")

    def _finish(self, verdict: Verdict) -> int:
        self.progress.end()
        if verdict.outcome is Outcome.DONE:
            print(printable(f"{self.name}: {verdict.reason}"))
            return EXIT_DONE
        print(f"reconciler: {self.name}: {printable(verdict.reason)}", file=sys.stderr)
        return EXIT_FAILED

    def _timed_out(self, timeout_s: float, *, target: int | None) -> int:
        self.progress.end()
        what = f"generation {target}" if target is not None else "its generation"
        seen = describe(self.last_seen) if self.last_seen else "nothing (could not LISTEN)"
        error = f" (last read failed: {self.last_error})" if self.last_error else ""
        print(
            printable(
                f"reconciler: {self.name}: timed out after {timeout_s:g} s waiting for {what}; "
                f"last saw {seen}{error}"
            ),
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
