"""The health stage: is what we applied running as asked?

Two halves:

* Pure assessment.  :func:`assess` reads one live object and says whether it is healthy,
  following the rules of Argo CD's health assessment (gitops-engine ``pkg/health``, plus the
  CustomResourceDefinition check Argo CD ships as Lua), so ops engineers who know Argo get the
  same answers; the rules live in one module per kind group (the table is in ``rules``).  A
  field of the wrong type gives a DEGRADED verdict with reason ``MalformedObject`` naming the
  field, never an exception.
  :func:`assess_workload_pods` adds a faster verdict for workloads from their pods.
* Waiting.  :func:`wait_healthy` polls the applied objects over injected reads, so this package
  never imports the Kubernetes client.
"""

from __future__ import annotations

from reconciler.cluster.health.pods import FAILING_WAIT_REASONS
from reconciler.cluster.health.rules import assess
from reconciler.cluster.health.verdict import Health, HealthStatus
from reconciler.cluster.health.wait import HealthOutcome, ListPods, ReadObject, wait_healthy
from reconciler.cluster.health.workload_pods import assess_workload_pods, pod_selector

__all__ = [
    "FAILING_WAIT_REASONS",
    "Health",
    "HealthOutcome",
    "HealthStatus",
    "ListPods",
    "ReadObject",
    "assess",
    "assess_workload_pods",
    "pod_selector",
    "wait_healthy",
]
