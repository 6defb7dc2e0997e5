"""The HorizontalPodAutoscaler controller, without a metrics pipeline.

Every metric reads exactly at its target, so the recommendation is the current size (clamped to
[minReplicas, maxReplicas]), and the conditions read as a healthy autoscaler's do.  A missing
target is ``FailedGetScale``.
"""

from __future__ import annotations

from typing import Any

from ..objects import now_iso
from ..patch_types import MERGE_PATCH
from ..resource_types import ResourceType
from .conditions import condition
from .manager import ControllerManager

Conditions = list[dict[str, Any]] | None


class AutoscalerController:
    """The ``hpa`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.autoscalers = self.registry.resource("autoscaling/v2", "HorizontalPodAutoscaler")

    def sync(self, namespace: str, name: str) -> None:
        """Keeps the target's replicas within [minReplicas, maxReplicas].

        The controller looks again every 15 s (scaled by the time factor).
        """
        registry = self.registry
        hpa = registry.find(self.autoscalers, namespace, name)
        if hpa is None:
            return
        spec = hpa.get("spec") or {}
        previous = (hpa.get("status") or {}).get("conditions")
        ref = spec.get("scaleTargetRef") or {}
        target_type = registry.types.by_kind(
            str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        )
        target = (
            registry.find(target_type, namespace, str(ref.get("name", "")))
            if target_type is not None and target_type.scale is not None
            else None
        )
        status: dict[str, Any] = {"currentReplicas": 0, "desiredReplicas": 0}
        if target is None or target_type is None:
            status["conditions"] = [_failed_get_scale(previous, target_type, ref)]
        else:
            self._scale(namespace, spec, previous, target_type, target, status)
        if "lastScaleTime" not in status and (hpa.get("status") or {}).get("lastScaleTime"):
            status["lastScaleTime"] = hpa["status"]["lastScaleTime"]
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
        registry.write_status(self.autoscalers, hpa, status)
        period = max(self.manager.settings.rollout_delay_s, self.manager.scaled(15.0))
        self.manager.enqueue("hpa", namespace, name, period)

    def _scale(
        self,
        namespace: str,
        spec: dict[str, Any],
        previous: Conditions,
        target_type: ResourceType,
        target: dict[str, Any],
        status: dict[str, Any],
    ) -> None:
        """Rescales the target when it is out of range; fills in ``status``."""
        scale = self.registry.scale_of(target_type, target)
        current = int(scale["spec"]["replicas"])
        low = int(spec.get("minReplicas", 1))
        high = int(spec.get("maxReplicas", max(low, current)))
        desired = min(max(current, low), high)
        if current == 0:
            conditions = _disabled(previous)
            desired = 0
        else:
            if desired != current:
                self.registry.patch(
                    target_type,
                    namespace,
                    target["metadata"]["name"],
                    MERGE_PATCH,
                    {"spec": {"replicas": desired}},
                    manager="kube-controller-manager",
                    subresource="scale",
                )
                status["lastScaleTime"] = now_iso()
                able, limited = _rescaled(previous, desired, below_minimum=current < low)
            else:
                able, limited = _within_range(previous)
            active = condition(
                previous,
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from "
                "the metrics at their targets",
            )
            conditions = [able, active, limited]
            status["currentMetrics"] = [
                _metric_at_target(metric) for metric in spec.get("metrics") or ()
            ]
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        status["conditions"] = conditions


def _failed_get_scale(
    previous: Conditions, target_type: ResourceType | None, ref: dict[str, Any]
) -> dict[str, Any]:
    plural = target_type.qualified_plural if target_type else str(ref.get("kind", ""))
    message = (
        "the HPA controller was unable to get the target's current scale: "
        f'{plural}/scale "{ref.get("name", "")}" not found'
    )
    return condition(previous, "AbleToScale", "False", "FailedGetScale", message)


def _disabled(previous: Conditions) -> list[dict[str, Any]]:
    """The conditions while the target has zero replicas (scaling is off)."""
    return [
        condition(
            previous,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ),
        condition(
            previous,
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        ),
    ]


def _rescaled(
    previous: Conditions, desired: int, *, below_minimum: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """AbleToScale and ScalingLimited after moving the target into range."""
    able = condition(
        previous,
        "AbleToScale",
        "True",
        "SucceededRescale",
        f"the HPA controller was able to update the target scale to {desired}",
    )
    limit_reason = "TooFewReplicas" if below_minimum else "TooManyReplicas"
    limit_message = (
        "the desired replica count is less than the minimum replica count"
        if below_minimum
        else "the desired replica count is more than the maximum replica count"
    )
    limited = condition(previous, "ScalingLimited", "True", limit_reason, limit_message)
    return able, limited


def _within_range(previous: Conditions) -> tuple[dict[str, Any], dict[str, Any]]:
    """AbleToScale and ScalingLimited while the target's size is within range."""
    able = condition(
        previous,
        "AbleToScale",
        "True",
        "ReadyForNewScale",
        "recommended size matches current size",
    )
    limited = condition(
        previous,
        "ScalingLimited",
        "False",
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
    return able, limited


def _metric_at_target(metric: dict[str, Any]) -> dict[str, Any]:
    """A metric's current value, reported as exactly its target."""
    kind = str(metric.get("type", "Resource"))
    source_key = kind[0].lower() + kind[1:]
    source = dict(metric.get(source_key) or {})
    target = source.pop("target", {}) or {}
    current = {
        key: target[key] for key in ("averageUtilization", "averageValue", "value") if key in target
    }
    return {"type": kind, source_key: {**source, "current": current}}
