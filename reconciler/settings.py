"""Settings from the environment: the one place that reads ``os.environ``."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, cast
from urllib.parse import urlsplit

from reconciler.errors import ConfigError

LogFormat = Literal["json", "console"]
EventLoop = Literal["uvloop", "asyncio"]
DEFAULT_KUBERNETES_VERSION = "1.32"
"""The schema version rendered objects are checked against by default: what fakekube serves."""
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How the daemon and the CLI run.  Built by :func:`from_env`; immutable afterwards."""

    database_url: str | None = None
    """DATABASE_URL: ``postgresql://user:pass@host:port/db``.  None only for ``demo``, which then
    starts a local PostgreSQL of its own."""

    kubeconfig: str | None = None
    """KUBECONFIG: path of a kubeconfig file.  None means in-cluster config when running in a Pod,
    else the client's default (``~/.kube/config``)."""

    repos_dir: Path = Path(".data/repos")
    """RECONCILER_REPOS_DIR: where ops repos are cloned, one directory per ops repo name."""

    poll_interval_s: float = 10.0
    """RECONCILER_POLL_INTERVAL_S: the longest the daemon sleeps between passes when no NOTIFY
    arrives.  NOTIFY wakes it at once; polling is the guarantee."""

    health_timeout_s: float = 300.0
    """RECONCILER_HEALTH_TIMEOUT_S: how long one attempt waits for its objects to become healthy
    before it is recorded as failed."""

    concurrency: int = 32
    """RECONCILER_CONCURRENCY: how many deployments one daemon reconciles at the same time.
    Rollouts mostly wait, so this is about latency, not CPU (bench/README.md)."""

    field_manager: str = "reconciler"
    """RECONCILER_FIELD_MANAGER: the server-side apply field manager name."""

    log_format: LogFormat | None = None
    """RECONCILER_LOG_FORMAT: ``json`` or ``console``; None picks console on a TTY, else JSON."""

    log_level: str = "info"
    """RECONCILER_LOG_LEVEL: debug, info, warning or error."""

    event_loop: EventLoop = "uvloop"
    """RECONCILER_EVENT_LOOP: ``uvloop`` (libuv's loop: about 5 % less of the daemon's CPU in a
    bulk update) or ``asyncio`` (the standard library's, should uvloop misbehave somewhere)."""

    daemon_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    """RECONCILER_DAEMON_ID: this daemon's name in leases (``claimed_by``); host-pid by default."""

    lease_s: float = 60.0
    """RECONCILER_LEASE_S: how long a claim on a deployment lasts without renewal.  The daemon
    renews it every third of this while it works; a crashed daemon's claims expire after it."""

    max_attempts: int = 5
    """RECONCILER_MAX_ATTEMPTS: automatic retries of a failed deployment before it is parked until
    its desired state changes."""

    retry_base_s: float = 10.0
    """RECONCILER_RETRY_BASE_S: the first retry delay; it doubles per attempt, with jitter."""

    retry_max_s: float = 600.0
    """RECONCILER_RETRY_MAX_S: the longest retry delay."""

    kube_timeout_s: float = 30.0
    """RECONCILER_KUBE_TIMEOUT_S: one Kubernetes API request taking longer is abandoned and
    retried (with backoff) like any transient failure."""

    render_timeout_s: float = 10.0
    """RECONCILER_RENDER_TIMEOUT_S: a render taking longer is stopped and fails (templates
    cannot loop for ever; they run in worker processes that are killed at this deadline)."""

    git_timeout_s: float = 60.0
    """RECONCILER_GIT_TIMEOUT_S: a clone or fetch taking longer than this is killed and fails."""

    shutdown_grace_s: float = 20.0
    """RECONCILER_SHUTDOWN_GRACE_S: after SIGTERM, how long in-flight work may finish before it is
    recorded as interrupted."""

    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """RECONCILER_KUBERNETES_VERSION: the Kubernetes version (``major.minor``) whose schema
    rendered objects are checked against before anything is applied; one that
    kubernetes-validate bundles (1.32 is what fakekube serves)."""

    history_retention_days: float | None = None
    """RECONCILER_HISTORY_RETENTION_DAYS: history rows finished longer ago than this are deleted
    in the background (what a rollback needs is always kept).  None, the default, keeps all."""

    self_heal: bool = True
    """RECONCILER_SELF_HEAL: re-apply managed objects someone else changed or deleted (a
    deployment's ``self_heal`` column overrides it); false: such deployments show
    ``drifted``."""

    skip_unchanged_applies: bool = True
    """RECONCILER_SKIP_UNCHANGED_APPLIES: an attempt does not send the apply of an object the
    watch cache shows as an apply would leave it (every field ours, at our value); false:
    every rendered object is applied on every attempt."""

    drift_check_interval_s: float = 300.0
    """RECONCILER_DRIFT_CHECK_INTERVAL_S: how often every owned object is compared with what
    the watches hold, besides each watch event (and once at start): what a watch missed, or
    what changed while the daemon was down, is caught by then."""

    http_address: tuple[str, int] | None = ("0.0.0.0", 8080)
    """RECONCILER_HTTP_ADDRESS: ``host:port`` the daemon serves ``/livez``, ``/readyz`` and
    ``/metrics`` on (port 0: any free port); ``off`` (None) serves nothing."""

    # Outgoing webhooks (the deliverer of ``event_deliveries``).
    webhook_timeout_s: float = 5.0
    """RECONCILER_WEBHOOK_TIMEOUT_S: one POST to a webhook taking longer is abandoned (and
    retried like any failure)."""

    webhook_concurrency: int = 8
    """RECONCILER_WEBHOOK_CONCURRENCY: how many POSTs one daemon has in flight at once."""

    webhook_max_attempts: int = 8
    """RECONCILER_WEBHOOK_MAX_ATTEMPTS: attempts of one delivery before it is marked failed."""

    webhook_retry_base_s: float = 5.0
    """RECONCILER_WEBHOOK_RETRY_BASE_S: the first retry delay; it doubles, with jitter."""

    webhook_retry_max_s: float = 600.0
    """RECONCILER_WEBHOOK_RETRY_MAX_S: the longest retry delay of a delivery."""

    # ---- git webhooks and freshness
    git_webhook_secret: str | None = field(default=None, repr=False)
    """RECONCILER_GIT_WEBHOOK_SECRET, or the contents of the file RECONCILER_GIT_WEBHOOK_SECRET_FILE
    names (trailing newline stripped): what ``POST /hooks/git`` verifies signatures with.  None:
    webhooks are off (the endpoint answers 503 saying so).  Never shown in a repr."""

    repo_check_interval_s: float | None = None
    """RECONCILER_REPO_CHECK_INTERVAL_S: how often the head of each ops repo's branch is asked
    of its remote (one ``git ls-remote``); a repo is fetched only when its head moved.  None:
    the poll interval.  A repo whose ``sync_interval_s`` is shorter is checked that often."""


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); errors say what is wrong."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}

    def take(name: str, attr: str, parse: Callable[[str, str], _T]) -> None:
        raw = env.get(name)
        if raw is not None and raw.strip() != "":
            values[attr] = parse(name, raw.strip())

    take("DATABASE_URL", "database_url", _parse_database_url)
    take("KUBECONFIG", "kubeconfig", lambda _n, v: v)
    take("RECONCILER_REPOS_DIR", "repos_dir", lambda _n, v: Path(v))
    take("RECONCILER_POLL_INTERVAL_S", "poll_interval_s", _positive_seconds)
    take("RECONCILER_HEALTH_TIMEOUT_S", "health_timeout_s", _positive_seconds)
    take("RECONCILER_CONCURRENCY", "concurrency", _positive_int)
    take("RECONCILER_FIELD_MANAGER", "field_manager", _field_manager)
    take("RECONCILER_LOG_FORMAT", "log_format", _log_format)
    take("RECONCILER_LOG_LEVEL", "log_level", _log_level)
    take("RECONCILER_EVENT_LOOP", "event_loop", _event_loop)
    take("RECONCILER_DAEMON_ID", "daemon_id", lambda _n, v: v)
    take("RECONCILER_LEASE_S", "lease_s", _positive_seconds)
    take("RECONCILER_MAX_ATTEMPTS", "max_attempts", _positive_int)
    take("RECONCILER_RETRY_BASE_S", "retry_base_s", _positive_seconds)
    take("RECONCILER_RETRY_MAX_S", "retry_max_s", _positive_seconds)
    take("RECONCILER_GIT_TIMEOUT_S", "git_timeout_s", _positive_seconds)
    take("RECONCILER_RENDER_TIMEOUT_S", "render_timeout_s", _positive_seconds)
    take("RECONCILER_KUBE_TIMEOUT_S", "kube_timeout_s", _positive_seconds)
    take("RECONCILER_SHUTDOWN_GRACE_S", "shutdown_grace_s", _positive_seconds)
    take("RECONCILER_HISTORY_RETENTION_DAYS", "history_retention_days", _positive_days)
    take("RECONCILER_KUBERNETES_VERSION", "kubernetes_version", _kubernetes_version)
    take("RECONCILER_SELF_HEAL", "self_heal", _boolean)
    take("RECONCILER_SKIP_UNCHANGED_APPLIES", "skip_unchanged_applies", _boolean)
    take("RECONCILER_DRIFT_CHECK_INTERVAL_S", "drift_check_interval_s", _positive_seconds)
    take("RECONCILER_HTTP_ADDRESS", "http_address", _http_address)
    # Outgoing webhooks.
    take("RECONCILER_WEBHOOK_TIMEOUT_S", "webhook_timeout_s", _positive_seconds)
    take("RECONCILER_WEBHOOK_CONCURRENCY", "webhook_concurrency", _positive_int)
    take("RECONCILER_WEBHOOK_MAX_ATTEMPTS", "webhook_max_attempts", _positive_int)
    take("RECONCILER_WEBHOOK_RETRY_BASE_S", "webhook_retry_base_s", _positive_seconds)
    take("RECONCILER_WEBHOOK_RETRY_MAX_S", "webhook_retry_max_s", _positive_seconds)

    # git webhooks and freshness
    if (
        env.get("RECONCILER_GIT_WEBHOOK_SECRET", "").strip()
        and env.get("RECONCILER_GIT_WEBHOOK_SECRET_FILE", "").strip()
    ):
        raise ConfigError(
            "set RECONCILER_GIT_WEBHOOK_SECRET or RECONCILER_GIT_WEBHOOK_SECRET_FILE, not both"
        )
    take("RECONCILER_GIT_WEBHOOK_SECRET_FILE", "git_webhook_secret", _secret_file)
    take("RECONCILER_GIT_WEBHOOK_SECRET", "git_webhook_secret", _secret)
    take("RECONCILER_REPO_CHECK_INTERVAL_S", "repo_check_interval_s", _positive_seconds)
    return Settings(**values)  # type: ignore[arg-type]


def _positive_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


_MIN_WEBHOOK_SECRET = 16


def _secret(name: str, raw: str) -> str:
    # The value is never echoed: it is a credential.
    if len(raw) < _MIN_WEBHOOK_SECRET:
        raise ConfigError(
            f"{name} is {len(raw)} characters long; use at least {_MIN_WEBHOOK_SECRET}"
            " (a random string: openssl rand -hex 32)"
        )
    return raw


def _secret_file(name: str, raw: str) -> str:
    try:
        text = Path(raw).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{name} {raw}: cannot read the webhook secret: {reason}") from None
    return _secret(f"{name} {raw}", text.strip())


def _positive_days(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of days, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of days, got {raw!r}")
    return value


def _boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _http_address(name: str, raw: str) -> tuple[str, int] | None:
    if raw.lower() == "off":
        return None
    host, colon, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address: [::]:8080
    if not colon or not host or not port.isdigit() or int(port) > 65535 or " " in host:
        raise ConfigError(f"{name} must be host:port (like 0.0.0.0:8080) or off, got {raw!r}")
    return host, int(port)


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {raw!r}")
    return value


def _field_manager(name: str, raw: str) -> str:
    # The API server limits field manager names to 128 characters.
    if len(raw) > 128 or any(ch.isspace() for ch in raw):
        raise ConfigError(f"{name} must be at most 128 characters without spaces, got {raw!r}")
    return raw


def _kubernetes_version(name: str, raw: str) -> str:
    # Only the form is checked here; whether the schema bundle has it is the validator's call.
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", raw)
    if match is None:
        raise ConfigError(f"{name} must be a Kubernetes version like 1.32, got {raw!r}")
    return f"{int(match[1])}.{int(match[2])}"


def _one_of(name: str, raw: str, choices: tuple[str, str]) -> str:
    lowered = raw.lower()
    if lowered not in choices:
        raise ConfigError(f"{name} must be {choices[0]!r} or {choices[1]!r}, got {raw!r}")
    return lowered


def _log_format(name: str, raw: str) -> LogFormat:
    return cast(LogFormat, _one_of(name, raw, ("json", "console")))


def _event_loop(name: str, raw: str) -> EventLoop:
    return cast(EventLoop, _one_of(name, raw, ("uvloop", "asyncio")))


def _log_level(name: str, raw: str) -> str:
    lowered = raw.lower()
    if lowered not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{name} must be debug, info, warning or error, got {raw!r}")
    return lowered


def _parse_database_url(name: str, raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ConfigError(
            f"{name} must be a PostgreSQL URL like postgresql://user:password@host:5432/db, "
            f"got a value starting with {scheme + '://' if scheme else repr(raw[:12])}"
        )
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad authority
    except ValueError:
        parts = None
    if parts is None or parts.fragment or "#" in raw:
        raise ConfigError(
            f"{name} is not a valid URL: percent-encode special characters in the user name "
            "and password ('#' as %23, '@' as %40, '/' as %2F, ':' as %3A)"
        )
    return raw
