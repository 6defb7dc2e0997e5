"""The kubelet (and the scheduler's binding): a Pod's life on the one node.

A Pod is Pending with ``ContainerCreating`` for the rollout delay, then Running and Ready; Pods
of Jobs run to Succeeded one more delay later.  Image faults (see ``Faults``) keep Pods in
ErrImagePull / ImagePullBackOff or CrashLoopBackOff, with back-offs that double.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..defaults import NODE_NAME
from .manager import ControllerManager
from .pod_status import ContainerFault, PodStatuses
from .workload import WorkloadController, is_ready, is_terminated


class Kubelet(WorkloadController):
    """The ``pod`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.statuses = PodStatuses()

    def sync(self, namespace: str, name: str) -> None:
        """Moves a Pod through its life: Pending, then Running and Ready (or a back-off)."""
        pod = self.registry.find(self.pods, namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp") or is_terminated(pod):
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            pod = self._bind(pod)
        manager = self.manager
        memory = manager.remember(pod["metadata"]["uid"])
        now = manager.now()
        started = memory.setdefault("created", now)
        spec = pod.get("spec") or {}
        containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
        status = dict(pod.get("status") or {})
        delay = manager.settings.rollout_delay_s
        if now < started + delay:
            if "startTime" not in status:
                self._write(pod, self.statuses.pending(pod))
            manager.enqueue("pod", namespace, name, started + delay - now)
            return
        faults = manager.settings.faults
        failing = [(c, faults.image_fault(str(c.get("image", "")))) for c in containers]
        restart_policy = spec.get("restartPolicy", "Always")
        if any(fault for _, fault in failing):
            self._back_off(pod, memory, failing, restart_policy, now=now, delay=delay)
            return
        if restart_policy != "Always" and is_ready(pod):
            finished_at = memory.setdefault("finish_at", now + delay)
            if now < finished_at:
                manager.enqueue("pod", namespace, name, finished_at - now)
                return
            self._write(pod, self.statuses.succeeded(pod))
            return
        if is_ready(pod):
            return
        memory["ready_at"] = now
        self._write(pod, self.statuses.running(pod))
        if restart_policy != "Always":
            memory["finish_at"] = now + delay
            manager.enqueue("pod", namespace, name, delay)

    def _bind(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The scheduler's part: binds the Pod to the one node."""
        # A shallow candidate: the write copies what it stores.
        bound = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": NODE_NAME}}
        return self.registry.write_object(self.pods, bound, manager="kube-scheduler") or pod

    def _write(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.registry.write_status(self.pods, pod, status, manager="kubelet")

    def _back_off(
        self,
        pod: dict[str, Any],
        memory: dict[str, Any],
        failing: Sequence[ContainerFault],
        restart_policy: str,
        *,
        now: float,
        delay: float,
    ) -> None:
        """One more failed start (or pull) when the back-off is over; then look again."""
        manager = self.manager
        step = int(memory.get("step", 0))
        memory.pop("ready_at", None)
        next_step = float(memory.get("next_step_at", now))
        if now >= next_step:
            # One more failed start (or pull): the back-off doubles, as the kubelet's does.
            memory["step"] = step + 1
            new_status = self.statuses.failing(pod, failing, step, restart_policy)
            self._write(pod, new_status)
            if new_status.get("phase") == "Failed":
                return
            missing = any(fault == "missing" for _, fault in failing)
            if missing and step % 2 == 0:
                # ErrImagePull shows briefly; ImagePullBackOff lasts the back-off.
                backoff = delay
            else:
                retries = step // 2 if missing else step
                backoff = max(delay, manager.scaled(min(300.0, 10.0 * 2**retries)))
            next_step = now + backoff
            memory["next_step_at"] = next_step
        # Look again soon: the fault may be lifted before the back-off ends.
        meta = pod["metadata"]
        manager.enqueue(
            "pod", meta["namespace"], meta["name"], min(next_step - now, max(delay, 0.05))
        )
