"""Pod statuses as the kubelet reports them: Pending, Running and Ready, Succeeded, and the
image faults (ErrImagePull / ImagePullBackOff, CrashLoopBackOff)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ..objects import now_iso
from .conditions import condition

#: A container and the image fault it suffers ("crashloop", "missing" or None).
ContainerFault = tuple[dict[str, Any], str | None]


class PodStatuses:
    """Builds Pod statuses; hands out pod IPs, which stay with a Pod once given."""

    def __init__(self) -> None:
        self._next_pod_ip = 2

    def _pod_ip(self, pod: dict[str, Any]) -> str:
        current = (pod.get("status") or {}).get("podIP")
        if current:
            return str(current)
        address = f"10.244.{self._next_pod_ip // 250}.{self._next_pod_ip % 250 + 2}"
        self._next_pod_ip += 1
        return address

    def _base_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = pod.get("status") or {}
        return {
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "qosClass": status.get("qosClass", "BestEffort"),
            "startTime": status.get("startTime", now_iso()),
        }

    def _conditions(
        self, pod: dict[str, Any], *, ready: bool, scheduled: bool = True, reason: str | None = None
    ) -> list[dict[str, Any]]:
        previous = (pod.get("status") or {}).get("conditions")
        not_ready_reason = reason or "ContainersNotReady"
        names = ",".join(c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ())
        message = f"containers with unready status: [{names}]"
        result = [
            condition(previous, "PodReadyToStartContainers", "True", "", ""),
            condition(previous, "Initialized", "True", "", ""),
            condition(
                previous,
                "Ready",
                "True" if ready else "False",
                "" if ready else not_ready_reason,
                "" if ready else message,
            ),
            condition(
                previous,
                "ContainersReady",
                "True" if ready else "False",
                "" if ready else not_ready_reason,
                "" if ready else message,
            ),
            condition(previous, "PodScheduled", "True" if scheduled else "False", "", ""),
        ]
        for item in result:
            if not item["reason"]:
                del item["reason"]
            if not item["message"]:
                del item["message"]
            item["lastProbeTime"] = None
        return result

    def pending(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._base_status(pod)
        status["phase"] = "Pending"
        status["conditions"] = self._conditions(pod, ready=False)
        status["containerStatuses"] = [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }
            for c in (pod.get("spec") or {}).get("containers") or ()
        ]
        return status

    def _container_id(self, pod: dict[str, Any], name: str, restarts: int = 0) -> str:
        digest = hashlib.sha256(f"{pod['metadata']['uid']}/{name}/{restarts}".encode()).hexdigest()
        return f"containerd://{digest}"

    def _image_id(self, image: str) -> str:
        digest = hashlib.sha256(image.encode()).hexdigest()
        repository = (
            image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        )
        return f"{repository}@sha256:{digest}"

    def running(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._base_status(pod)
        now = now_iso()
        pod_ip = self._pod_ip(pod)
        status.update(phase="Running", podIP=pod_ip, podIPs=[{"ip": pod_ip}])
        status["conditions"] = self._conditions(pod, ready=True)
        previous = {
            s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or ()
        }
        statuses = []
        for container in (pod.get("spec") or {}).get("containers") or ():
            name = container.get("name", "")
            restarts = int(previous.get(name, {}).get("restartCount", 0))
            entry: dict[str, Any] = {
                "name": name,
                "image": container.get("image"),
                "imageID": self._image_id(str(container.get("image", ""))),
                "containerID": self._container_id(pod, name, restarts),
                "ready": True,
                "restartCount": restarts,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            last = previous.get(name, {}).get("lastState")
            if last:
                entry["lastState"] = last
            statuses.append(entry)
        status["containerStatuses"] = statuses
        return status

    def succeeded(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self.running(pod)
        now = now_iso()
        status["phase"] = "Succeeded"
        status["conditions"] = self._conditions(pod, ready=False, reason="PodCompleted")
        for entry in status["containerStatuses"]:
            started = entry["state"]["running"]["startedAt"]
            entry.update(ready=False, started=False)
            entry["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": now,
                    "containerID": entry["containerID"],
                }
            }
        return status

    def failing(
        self,
        pod: dict[str, Any],
        failing: Sequence[ContainerFault],
        step: int,
        restart_policy: str,
    ) -> dict[str, Any]:
        """The status after failed start number ``step`` (from 0) of some container."""
        status = self._base_status(pod)
        now = now_iso()
        missing = any(fault == "missing" for _, fault in failing)
        statuses = []
        phase = "Pending" if missing else "Running"
        for container, fault in failing:
            entry, failed = self._failing_container(
                pod,
                container,
                fault,
                step=step,
                restart_policy=restart_policy,
                missing=missing,
                now=now,
            )
            if failed:
                phase = "Failed"
            statuses.append(entry)
        status["phase"] = phase
        if phase == "Running":
            pod_ip = self._pod_ip(pod)
            status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
        status["conditions"] = self._conditions(pod, ready=False)
        status["containerStatuses"] = statuses
        return status

    def _failing_container(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        fault: str | None,
        *,
        step: int,
        restart_policy: str,
        missing: bool,
        now: str,
    ) -> tuple[dict[str, Any], bool]:
        """One container's status in a failing Pod, and whether it fails the Pod for good."""
        name = container.get("name", "")
        image = str(container.get("image", ""))
        entry: dict[str, Any] = {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
        }
        if fault == "missing":
            reason = "ErrImagePull" if step % 2 == 0 else "ImagePullBackOff"
            message = (
                f'failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {image}: not found'
                if reason == "ErrImagePull"
                else f'Back-off pulling image "{image}"'
            )
            entry["state"] = {"waiting": {"reason": reason, "message": message}}
        elif fault == "crashloop":
            return self._crashed_container(
                pod, entry, step=step, restart_policy=restart_policy, now=now
            )
        elif missing:
            entry["state"] = {"waiting": {"reason": "PodInitializing"}}
        else:
            entry.update(
                ready=False,
                started=True,
                imageID=self._image_id(image),
                containerID=self._container_id(pod, name),
                state={"running": {"startedAt": now}},
            )
        return entry, False

    def _crashed_container(
        self,
        pod: dict[str, Any],
        entry: dict[str, Any],
        *,
        step: int,
        restart_policy: str,
        now: str,
    ) -> tuple[dict[str, Any], bool]:
        """A crashed container: terminated (``restartPolicy: Never``) or in CrashLoopBackOff."""
        name = entry["name"]
        restarts = step + 1
        entry["imageID"] = self._image_id(entry["image"])
        entry["containerID"] = self._container_id(pod, name, restarts)
        entry["restartCount"] = restarts
        terminated = {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": now,
            "finishedAt": now,
            "containerID": entry["containerID"],
        }
        if restart_policy == "Never":
            entry["restartCount"] = 0
            entry["state"] = {"terminated": terminated}
            return entry, True
        backoff = min(300, 10 * 2**step)
        entry["lastState"] = {"terminated": terminated}
        entry["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {backoff}s restarting failed container={name} "
                f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                f"({pod['metadata']['uid']})",
            }
        }
        return entry, False
