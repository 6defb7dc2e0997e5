"""The daemon's metrics, on a registry of its own (tests and several daemons in one process
must not share one).

Events count themselves as they happen (a reconcile ending, a repo fetched, a request to the
API server); what is a state rather than an event (deployments by status, work in flight, the
watch cache's and the observer's counters, the age of each repo's last good sync) is read at
scrape time by :meth:`DaemonMetrics.refresh`, from one aggregate query and from memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.model import Checkout, OpsRepo

_RECONCILE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, kw_only=True)
class Sampled:
    """The counters that live on the observer and the watch cache, read at each scrape."""

    heals_requested: int = 0
    health_changes: int = 0
    watch_events: int = 0
    watch_relists: int = 0
    watch_reconnects: int = 0
    watch_failures: int = 0
    watch_cache_objects: int = 0


class DaemonMetrics:
    """Every metric of one daemon; :meth:`exposition` is the body of ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_seconds = Histogram(
            "reconciler_reconcile_duration_seconds",
            "How long attempts took, from claim to recorded outcome.",
            ["action", "outcome"],
            buckets=_RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "reconciler_attempts",
            "Attempts ended, by outcome (healthy, failed, converged, superseded, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.deployments = Gauge(
            "reconciler_deployments",
            "Deployments by current_status (all of them, whichever daemon works on them).",
            ["status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "reconciler_in_flight",
            "This daemon's attempts in flight: applying (holding a slot) or waiting for health.",
            ["state"],
            registry=self.registry,
        )
        self._define_repo_and_cluster_metrics()
        self._sampled: Callable[[], Sampled] = Sampled
        self.registry.register(_SampledCollector(lambda: self._sampled()))
        self._statuses_seen: set[str] = set()
        self._last_good_sync: dict[str, float] = {}

    def _define_repo_and_cluster_metrics(self) -> None:
        self.repo_sync_seconds = Histogram(
            "reconciler_repo_sync_duration_seconds",
            "How long fetches of each ops repo took, failed ones included.",
            ["repo"],
            buckets=_SYNC_BUCKETS,
            registry=self.registry,
        )
        self.repo_sync_age = Gauge(
            "reconciler_repo_sync_age_seconds",
            "Seconds since this daemon last synced each ops repo successfully.",
            ["repo"],
            registry=self.registry,
        )
        self.repo_sync_errors = Counter(
            "reconciler_repo_sync_errors",
            "Failed fetches of each ops repo (the last good checkout keeps being served).",
            ["repo"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "reconciler_webhook_deliveries",
            "Attempts to deliver an event to an outgoing webhook, by outcome: delivered, "
            "retry (it is tried again later) or failed (its attempts ran out).",
            ["outcome"],
            registry=self.registry,
        )
        self.kube_requests = Counter(
            "reconciler_kubernetes_requests",
            "HTTP requests to the API server (retries included) by verb and status code; "
            "code 0: no answer (timeout, connection refused).",
            ["verb", "code"],
            registry=self.registry,
        )

    # ------------------------------------------------------------ events

    def reconciled(self, action: str, outcome: str, seconds: float) -> None:
        """One attempt ended (``Hooks.finished``)."""
        self.reconcile_seconds.labels(action=action, outcome=outcome).observe(seconds)
        self.attempts.labels(outcome=outcome).inc()

    def repo_synced(self, repo: OpsRepo, checkout: Checkout, seconds: float) -> None:
        """One fetch of ``repo`` ended (``Checkouts``' hook); ``checkout.error`` when it failed."""
        self.repo_sync_seconds.labels(repo=repo.name).observe(seconds)
        if checkout.error is not None:
            self.repo_sync_errors.labels(repo=repo.name).inc()
        else:
            self._last_good_sync[repo.name] = time.monotonic()

    def delivery_attempted(self, outcome: str) -> None:
        """One POST to an outgoing webhook ended: ``delivered``, ``retry`` or ``failed``."""
        self.webhook_deliveries.labels(outcome=outcome).inc()

    def repo_checked(self, repo: OpsRepo) -> None:
        """A head check found ``repo``'s checkout current: as good as a sync for its age."""
        self._last_good_sync[repo.name] = time.monotonic()

    def kube_request(self, verb: str, code: int) -> None:
        """One HTTP request to the API server was answered with ``code`` (0: no answer)."""
        self.kube_requests.labels(verb=verb, code=str(code)).inc()

    # ------------------------------------------------------------ states, at scrape time

    def sample(self, read: Callable[[], Sampled]) -> None:
        """Where the observer's and the watch cache's counters are read from at each scrape."""
        self._sampled = read

    def refresh(
        self, *, counts_by_status: dict[str, int] | None, applying: int, waiting: int
    ) -> None:
        """Set the states before a scrape.  ``counts_by_status`` None: the database did not
        answer, and no count is shown rather than a stale one."""
        if counts_by_status is None:
            self.deployments.clear()
            self._statuses_seen.clear()
        else:
            # A status whose last deployment left it shows 0 rather than its old count.
            for status in self._statuses_seen - counts_by_status.keys():
                self.deployments.labels(status=status).set(0)
            for status, count in counts_by_status.items():
                self.deployments.labels(status=status).set(count)
            self._statuses_seen |= counts_by_status.keys()
        self.in_flight.labels(state="applying").set(applying)
        self.in_flight.labels(state="waiting").set(waiting)
        now = time.monotonic()
        for repo, at in self._last_good_sync.items():
            self.repo_sync_age.labels(repo=repo).set(round(now - at, 3))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class _SampledCollector(Collector):
    """The observer's and the watch cache's own counters, as Prometheus metrics."""

    def __init__(self, read: Callable[[], Sampled]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        now = self._read()
        counters = (
            (
                "reconciler_drift_heals_requested",
                "Heals asked for drifted objects.",
                now.heals_requested,
            ),
            (
                "reconciler_health_changes",
                "Health changes seen after rollouts.",
                now.health_changes,
            ),
            ("reconciler_watch_events", "Watch events the cache applied.", now.watch_events),
            ("reconciler_watch_relists", "Full lists after a watch expired.", now.watch_relists),
            ("reconciler_watch_reconnects", "Watches opened again.", now.watch_reconnects),
            ("reconciler_watch_failures", "Failed lists and watches.", now.watch_failures),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        yield GaugeMetricFamily(
            "reconciler_watch_cache_objects",
            "Objects the watch cache holds.",
            value=now.watch_cache_objects,
        )
