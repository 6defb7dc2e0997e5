"""The resources fakekube serves: names, scopes, verbs and subresources of each kind.

They come from the generated API modules of the official ``kubernetes`` client (each resource's
path, plural name, scope, subresources and verbs, as they come from the same OpenAPI document as
the schemas), never from a hand-typed copy.  What no schema carries (short names, categories,
which kinds count generations) is apiserver registry data; the small tables below hold it and
say so.  Custom resources get their types from their CRD.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .schema import SchemaFactory, SchemaNode, builtin_definitions, builtin_factory, package_dir

#: One served version per group: the GA version a 1.32 cluster prefers.  Alpha/beta versions
#: and second versions of a group (autoscaling/v1) are not served, as that would need conversion.
SERVED_GROUP_VERSIONS: tuple[tuple[str, str], ...] = (
    ("", "v1"),
    ("apps", "v1"),
    ("batch", "v1"),
    ("autoscaling", "v2"),
    ("policy", "v1"),
    ("networking.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("apiextensions.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    ("scheduling.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("node.k8s.io", "v1"),
    ("certificates.k8s.io", "v1"),
    ("admissionregistration.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1"),
)

# Registry data of kube-apiserver 1.32 that the OpenAPI document does not carry.
_SHORT_NAMES: Mapping[str, tuple[str, ...]] = {
    "configmaps": ("cm",),
    "endpoints": ("ep",),
    "events": ("ev",),
    "limitranges": ("limits",),
    "namespaces": ("ns",),
    "nodes": ("no",),
    "persistentvolumeclaims": ("pvc",),
    "persistentvolumes": ("pv",),
    "pods": ("po",),
    "replicationcontrollers": ("rc",),
    "resourcequotas": ("quota",),
    "serviceaccounts": ("sa",),
    "services": ("svc",),
    "daemonsets": ("ds",),
    "deployments": ("deploy",),
    "replicasets": ("rs",),
    "statefulsets": ("sts",),
    "horizontalpodautoscalers": ("hpa",),
    "cronjobs": ("cj",),
    "certificatesigningrequests": ("csr",),
    "ingresses": ("ing",),
    "networkpolicies": ("netpol",),
    "poddisruptionbudgets": ("pdb",),
    "priorityclasses": ("pc",),
    "storageclasses": ("sc",),
    "customresourcedefinitions": ("crd", "crds"),
}
_CATEGORY_ALL = frozenset(
    {
        "pods",
        "replicationcontrollers",
        "services",
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
        "horizontalpodautoscalers",
        "cronjobs",
        "jobs",
    }
)
# Kinds whose registry strategy maintains metadata.generation (custom resources always do).
_GENERATION_KINDS = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "IngressClass",
        "CustomResourceDefinition",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PriorityLevelConfiguration",
        "FlowSchema",
    }
)
# Kinds whose DELETE answers the deleted object rather than a Status (graceful or legacy).
_RETURNS_DELETED_OBJECT = frozenset({"Pod", "Service", "Namespace", "CustomResourceDefinition"})


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps what its scale subresource shows (dotted paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = "spec.selector"
    selector_is_string: bool = False


@dataclass(frozen=True)
class ResourceType:
    """One served resource: what discovery advertises and what the store and apply need."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...]
    schema: SchemaNode = field(compare=False, repr=False)
    has_status: bool = False
    scale: ScalePaths | None = None
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tracks_generation: bool = False
    returns_deleted_object: bool = False
    definition: str | None = None
    custom: bool = False
    #: For custom resources: every served version (the first one is the storage version).
    served_versions: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """``group/version``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """The singular resource name (the lower-cased kind)."""
        return self.kind.lower()

    @property
    def qualified_plural(self) -> str:
        """``deployments.apps``: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Deployment.apps``: how validation messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects."""
        return f"{self.kind}List"

    def storage_version_hash(self) -> str:
        """A stable hash, as discovery advertises, of where the objects are stored."""
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()


def _snake(kind: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", kind).lower()


_SERIALIZER = re.compile(r"    def _(\w+)_serialize\(.*?resource_path='([^']+)'", re.S)
_VERBS = (
    ("delete_collection_", "deletecollection"),
    ("create_", "create"),
    ("delete_", "delete"),
    ("list_", "list"),
    ("patch_", "patch"),
    ("replace_", "update"),
    ("read_", "get"),
)


def _client_module_source(group: str, version: str) -> str:
    stem = (group.removesuffix(".k8s.io").replace(".", "_") if group else "core") + "_" + version
    path = package_dir("kubernetes") / "client" / "api" / f"{stem}_api.py"
    if not path.exists():
        raise RuntimeError(f"the kubernetes client has no API module for {group}/{version}")
    return path.read_text(encoding="utf-8")


def _resource_paths(group: str, version: str) -> dict[str, dict[str, Any]]:
    """plural -> {snake, namespaced, verbs, subresources} from the client's request builders."""
    found: dict[str, dict[str, Any]] = {}
    for match in _SERIALIZER.finditer(_client_module_source(group, version)):
        method, path = match.group(1), match.group(2)
        verb = next((v for prefix, v in _VERBS if method.startswith(prefix)), None)
        if verb is None:
            continue
        rest = method.split("_", 2 if verb == "deletecollection" else 1)[-1]
        rest = rest.removeprefix("namespaced_").removesuffix("_for_all_namespaces")
        parts = path.strip("/").split("/")
        namespaced = "{namespace}" in parts
        if "{name}" in parts:
            index = parts.index("{name}")
            plural = parts[index - 1]
            subresource = "/".join(parts[index + 1 :])
        else:
            plural, subresource = parts[-1], ""
        if subresource:
            rest = rest.removesuffix("_" + subresource)
        entry = found.setdefault(
            plural, {"snake": rest, "namespaced": namespaced, "verbs": set(), "subresources": {}}
        )
        if subresource:
            entry["subresources"].setdefault(subresource, set()).add(verb)
        else:
            entry["verbs"].add(verb)
            if namespaced:
                entry["namespaced"] = True
    return found


@functools.cache
def builtin_resource_types() -> tuple[ResourceType, ...]:
    """Every built-in resource fakekube serves."""
    definitions = builtin_definitions()
    gvk_definitions: dict[tuple[str, str, str], str] = {}
    for name, raw in definitions.items():
        for gvk in raw.get("x-kubernetes-group-version-kind") or ():
            if name.endswith("List") or gvk["kind"] in ("Status", "WatchEvent", "DeleteOptions"):
                continue
            gvk_definitions.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    factory = builtin_factory()
    types: list[ResourceType] = []
    for group, version in SERVED_GROUP_VERSIONS:
        kinds = {
            _snake(kind): (kind, name)
            for (g, v, kind), name in gvk_definitions.items()
            if g == group and v == version
        }
        for plural, info in sorted(_resource_paths(group, version).items()):
            if "get" not in info["verbs"] or info["snake"] not in kinds:
                continue
            kind, definition = kinds[info["snake"]]
            verbs = set(info["verbs"])
            if "list" in verbs:
                verbs.add("watch")
            subresources = info["subresources"]
            scale = None
            if "get" in subresources.get("scale", ()):
                scale = ScalePaths(
                    label_selector="spec.selector",
                    selector_is_string=False,
                )
            types.append(
                ResourceType(
                    group=group,
                    version=version,
                    kind=kind,
                    plural=plural,
                    namespaced=info["namespaced"],
                    verbs=tuple(sorted(verbs)),
                    schema=factory.definition(definition),
                    has_status="get" in subresources.get("status", ()),
                    scale=scale,
                    short_names=_SHORT_NAMES.get(plural, ()),
                    categories=("all",) if plural in _CATEGORY_ALL else (),
                    tracks_generation=kind in _GENERATION_KINDS,
                    returns_deleted_object=kind in _RETURNS_DELETED_OBJECT,
                    definition=definition,
                )
            )
    return tuple(types)


def custom_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The resource types an Established CustomResourceDefinition adds, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = [v for v in spec.get("versions") or () if v.get("served")]
    storage = [v["name"] for v in served if v.get("storage")]
    ordered_versions = tuple(storage + [v["name"] for v in served if v["name"] not in storage])
    result: list[ResourceType] = []
    for version in served:
        raw_schema = (version.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        root = _custom_root(SchemaFactory(builtin_definitions()), raw_schema)
        subresources = version.get("subresources") or {}
        scale_spec = subresources.get("scale")
        scale = None
        if isinstance(scale_spec, Mapping):
            scale = ScalePaths(
                spec_replicas=str(scale_spec.get("specReplicasPath", ".spec.replicas")).lstrip("."),
                status_replicas=str(
                    scale_spec.get("statusReplicasPath", ".status.replicas")
                ).lstrip("."),
                label_selector=(
                    str(scale_spec["labelSelectorPath"]).lstrip(".")
                    if scale_spec.get("labelSelectorPath")
                    else None
                ),
                selector_is_string=True,
            )
        result.append(
            ResourceType(
                group=str(spec.get("group", "")),
                version=str(version["name"]),
                kind=str(names.get("kind", "")),
                plural=str(names.get("plural", "")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs=(
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ),
                schema=root,
                has_status="status" in subresources,
                scale=scale,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                tracks_generation=True,
                custom=True,
                served_versions=ordered_versions,
            )
        )
    return result


def _custom_root(factory: SchemaFactory, raw_schema: Mapping[str, Any]) -> SchemaNode:
    """A custom resource's root schema, with ``metadata`` typed as ObjectMeta."""
    properties = dict(raw_schema.get("properties") or {})
    properties["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    return factory.node(dict(raw_schema) | {"properties": properties, "type": "object"})
