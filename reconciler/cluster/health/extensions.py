"""Argo CD's health rule for CustomResourceDefinitions.

gitops-engine has no Go rule for CRDs (argoproj/gitops-engine#655 and #656 were closed in
favour of Lua); Argo CD ships one as
``resource_customizations/apiextensions.k8s.io/CustomResourceDefinition/health.lua``, and this
follows its latest form.  Conditions are read in order and the first decisive one wins:

* ``Terminating=True``: progressing (the CRD is being deleted);
* ``NamesAccepted=False``: degraded (its names clash with another CRD's);
* ``NonStructuralSchema=True``: degraded (a schema the API server cannot serve);
* ``Established=False`` with reason ``Installing``: progressing (the API server accepted the
  names and is about to serve the resource; in HA clusters it waits 5 s on purpose).

After that, a CRD never reported ``Established=True`` is degraded, and one with no conditions
at all is progressing (the API server has not looked at it yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import Condition, conditions
from reconciler.cluster.health.verdict import Health, HealthStatus


def _decisive(condition: Condition) -> Health | None:
    """The verdict one condition settles on its own, if any."""
    if condition.type == "Terminating" and condition.true:
        return Health(HealthStatus.PROGRESSING, f"terminating: {condition.message}")
    if condition.type == "NamesAccepted" and condition.status == "False":
        return Health(
            HealthStatus.DEGRADED,
            f"names have not been accepted: {condition.message}",
            condition.reason or "NamesNotAccepted",
        )
    if condition.type == "NonStructuralSchema" and condition.true:
        return Health(
            HealthStatus.DEGRADED,
            f"schema violations found: {condition.message}",
            condition.reason or "NonStructuralSchema",
        )
    if condition.type == "Established" and not condition.true and condition.reason == "Installing":
        return Health(HealthStatus.PROGRESSING, "being installed")
    return None


def crd_health(obj: Mapping[str, Any]) -> Health:
    """A CustomResourceDefinition: established, being installed or deleted, or broken."""
    found = conditions(obj)
    if not found:
        return Health(HealthStatus.PROGRESSING, "status conditions not found")
    established = False
    for condition in found:
        verdict = _decisive(condition)
        if verdict is not None:
            return verdict
        established = established or (condition.type == "Established" and condition.true)
    if not established:
        return Health(HealthStatus.DEGRADED, "not established", "NotEstablished")
    return Health(HealthStatus.HEALTHY, "established")
