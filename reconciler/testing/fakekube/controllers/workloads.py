"""The workload controllers, wired to the manager: a kubelet for Pods, and ReplicaSets,
Deployments, StatefulSets, DaemonSets and Jobs, following the algorithms of
kube-controller-manager closely enough that ``kubectl rollout status`` and a health checker see
what they would see on a real cluster.

An event on an object enqueues its own controller and the controller of its owner.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store import WatchEvent
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .job import JobController
from .manager import ControllerManager
from .owners import controller_owner
from .pods import Kubelet
from .replicaset import ReplicaSetController
from .statefulset import StatefulSetController

#: The controller of each owner kind.
_OWNER_CONTROLLERS = {
    "ReplicaSet": "replicaset",
    "Deployment": "deployment",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Job": "job",
}


class Workloads:
    """The workload controllers, sharing the manager's queue and memory."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.kubelet = Kubelet(manager)
        self.replica_sets = ReplicaSetController(manager)
        self.deployments = DeploymentController(manager)
        self.stateful_sets = StatefulSetController(manager)
        self.daemon_sets = DaemonSetController(manager)
        self.jobs = JobController(manager)
        manager.register("pod", self.kubelet.sync)
        manager.register("replicaset", self.replica_sets.sync)
        manager.register("deployment", self.deployments.sync)
        manager.register("statefulset", self.stateful_sets.sync)
        manager.register("daemonset", self.daemon_sets.sync)
        manager.register("job", self.jobs.sync)
        manager.route(("", "pods"), self._router("pod"))
        manager.route(("apps", "replicasets"), self._router("replicaset"))
        manager.route(("apps", "deployments"), self._router("deployment"))
        manager.route(("apps", "statefulsets"), self._router("statefulset"))
        manager.route(("apps", "daemonsets"), self._router("daemonset"))
        manager.route(("batch", "jobs"), self._router("job"))

    def _router(self, controller: str) -> Callable[[WatchEvent], None]:
        def callback(event: WatchEvent) -> None:
            meta = event.object["metadata"]
            namespace = meta.get("namespace", "")
            if event.type == "DELETED":
                self.manager.forget(meta["uid"])
            else:
                self.manager.enqueue(controller, namespace, meta["name"])
            owner = controller_owner(event.object)
            if owner is not None and owner.get("kind") in _OWNER_CONTROLLERS:
                self.manager.enqueue(_OWNER_CONTROLLERS[owner["kind"]], namespace, owner["name"])

        return callback
