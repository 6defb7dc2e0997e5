"""Defaulting and the admission steps a real cluster applies to what it stores.

Each function mutates a private copy of the object being written.  Defaults matter for fidelity:
they are what makes ``kubectl diff`` quiet after an apply, and they belong to no field manager
when the object was applied.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Callable
from typing import Any

from .resource_types import ResourceType
from .schema import SchemaNode

DEFAULT_STORAGE_CLASS = "standard"
NODE_NAME = "fakekube-node"


class Allocator:
    """Hands out ClusterIPs and NodePorts as the apiserver's allocators do (no reuse)."""

    def __init__(self) -> None:
        self._service_network = ipaddress.ip_network("10.96.0.0/12")
        self._next_ip = 10
        self._next_node_port = 30000
        self._next_lb_ip = 1

    def cluster_ip(self) -> str:
        """A fresh service ClusterIP."""
        self._next_ip += 1
        return str(self._service_network.network_address + self._next_ip)

    def node_port(self) -> int:
        """A fresh NodePort in 30000-32767."""
        port = self._next_node_port
        self._next_node_port = 30000 + (self._next_node_port - 30000 + 1) % 2768
        return port

    def load_balancer_ip(self) -> str:
        """A fresh external address for a LoadBalancer Service."""
        address = f"172.18.255.{self._next_lb_ip}"
        self._next_lb_ip = self._next_lb_ip % 254 + 1
        return address


def _image_pull_policy(image: str) -> str:
    reference = image.split("@", 1)
    if len(reference) == 2:
        return "IfNotPresent"
    last = reference[0].rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in container and isinstance(container.get("image"), str):
        container["imagePullPolicy"] = _image_pull_policy(container["image"])
    container.setdefault("resources", {})
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or ():
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(name))


def _volume(volume: Any) -> None:
    if not isinstance(volume, dict):
        return
    for source in ("configMap", "secret", "projected", "downwardAPI"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 420)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def pod_spec(spec: Any) -> None:
    """Defaults of a PodSpec (in a Pod or a template)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            _container(container)
    for volume in spec.get("volumes") or ():
        _volume(volume)


def _template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(template.get("spec"))


def _deployment(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)


def _replica_set(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template(spec)


def _stateful_set(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {}).setdefault("phase", "Pending")
    _template(spec)


def _daemon_set(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)


def _job(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    if ctx.creating and not spec.get("manualSelector"):
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        generated = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template = spec.setdefault("template", {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(generated)
    _template(spec)


def _cron_job(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if isinstance(job_spec, dict):
        _template(job_spec)


def _service(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    service_type = spec["type"]
    live_spec = (ctx.live or {}).get("spec") or {}
    if service_type != "ExternalName":
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if "clusterIP" not in spec and live_spec.get("clusterIP"):
            spec["clusterIP"] = live_spec["clusterIP"]
        if "clusterIP" not in spec or spec.get("clusterIP") == "":
            spec["clusterIP"] = ctx.allocator.cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    live_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p
        for p in live_spec.get("ports") or ()
        if isinstance(p, dict)
    }
    for port in spec.get("ports") or ():
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        if "targetPort" not in port and "port" in port:
            port["targetPort"] = port["port"]
        if service_type in ("NodePort", "LoadBalancer") and "nodePort" not in port:
            previous = live_ports.get((port.get("port"), port["protocol"]), {})
            port["nodePort"] = previous.get("nodePort") or ctx.allocator.node_port()
    if service_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if service_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def _pvc(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    if ctx.creating and "storageClassName" not in spec:
        spec["storageClassName"] = DEFAULT_STORAGE_CLASS


def _pv(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")


def _namespace(obj: dict[str, Any], ctx: Context) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _secret(obj: dict[str, Any], ctx: Context) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _pod(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec(spec)
    if ctx.creating:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _pod_template(obj: dict[str, Any], ctx: Context) -> None:
    _template(obj)


def _network_policy(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _crd(obj: dict[str, Any], ctx: Context) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("conversion", {"strategy": "None"})
    names = spec.setdefault("names", {})
    if "kind" in names:
        names.setdefault("listKind", names["kind"] + "List")
    if "plural" in names:
        names.setdefault("singular", str(names.get("kind", names["plural"])).lower())


_DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any], Context], None]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "Pod"): _pod,
    ("", "ReplicationController"): _replica_set,
    ("", "PodTemplate"): _pod_template,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}

# The status an object starts with when the status in a create request is dropped.
_INITIAL_STATUS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "Pod"): {"phase": "Pending", "qosClass": "BestEffort"},
    ("", "Namespace"): {"phase": "Active"},
    ("", "PersistentVolumeClaim"): {"phase": "Pending"},
    ("", "PersistentVolume"): {"phase": "Pending"},
    ("", "Service"): {"loadBalancer": {}},
}


class Context:
    """What defaulting may look at besides the object."""

    def __init__(self, *, creating: bool, live: dict[str, Any] | None, allocator: Allocator):
        self.creating = creating
        self.live = live
        self.allocator = allocator


def initial_status(resource: ResourceType) -> dict[str, Any] | None:
    """The status a new object of ``resource`` starts with, if any."""
    status = _INITIAL_STATUS.get((resource.group, resource.kind))
    return copy.deepcopy(status) if status is not None else None


def apply_defaults(resource: ResourceType, obj: dict[str, Any], ctx: Context) -> None:
    """Applies the defaults of ``resource`` to ``obj`` in place."""
    if resource.custom:
        _schema_defaults(obj, resource.schema)
        return
    defaulter = _DEFAULTERS.get((resource.group, resource.kind))
    if defaulter is not None:
        defaulter(obj, ctx)


def _schema_defaults(value: Any, node: SchemaNode) -> None:
    """Structural-schema defaulting of custom resources (``default`` keywords)."""
    if isinstance(value, dict) and node.kind == "struct":
        for key, sub in node.fields.items():
            if key not in value and sub.default is not None:
                value[key] = copy.deepcopy(sub.default)
            if key in value and key != "metadata":
                _schema_defaults(value[key], sub)
    elif isinstance(value, dict) and node.kind == "map":
        for item in value.values():
            _schema_defaults(item, node.element)
    elif isinstance(value, list) and node.kind == "list":
        for item in value:
            _schema_defaults(item, node.element)
