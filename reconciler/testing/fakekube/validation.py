"""The validation a real apiserver answers with 422 Invalid, for the rules reconciler can hit.

Covered: object names and labels, schema ``required`` fields, enum values (in decoding), the
workload rules (selector present and matching the template, containers with images, restart
policies of Jobs), immutable fields, and the CustomResourceDefinition basics.  Not covered: the
long tail of per-field rules (resource quantities, probes, volume sources ...).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .fields import FieldError
from .resource_types import ResourceType
from .schema import SchemaNode
from .store import LabelSelector

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_HELP = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_WORKLOADS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})
# StatefulSet spec fields an update may change; everything else is forbidden.
_STATEFULSET_MUTABLE = frozenset(
    {
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
        "revisionHistoryLimit",
    }
)


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, f"Invalid value: {json.dumps(value)}: {detail}")


def _required(path: str, detail: str = "") -> FieldError:
    return FieldError(
        path, "Required value" + (f": {detail}" if detail else ""), reason="FieldValueRequired"
    )


def _forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, f"Forbidden: {detail}", reason="FieldValueForbidden")


def validate_name(resource: ResourceType, name: str) -> list[FieldError]:
    """The apiserver's rules for ``metadata.name`` of ``resource``."""
    path = "metadata.name"
    if resource.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return [_invalid(path, name, "may not contain '/' or '%' and may not be '.' or '..'")]
        return []
    if resource.kind in ("Namespace",):
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [_invalid(path, name, _LABEL_HELP)]
        return []
    if resource.kind == "Service":
        if len(name) > 63 or not _DNS1035_LABEL.match(name):
            return [_invalid(path, name, _DNS1035_HELP)]
        return []
    if resource.kind == "CustomResourceDefinition":
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [_invalid(path, name, _SUBDOMAIN_HELP)]
    return []


def _qualified_key(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "prefix part " + _SUBDOMAIN_HELP
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )
    return None


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """Label keys are qualified names; values are at most 63 label characters."""
    errors: list[FieldError] = []
    if not isinstance(labels, dict):
        return errors
    for key, value in labels.items():
        problem = _qualified_key(key)
        if problem:
            errors.append(_invalid(path, key, problem))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(_invalid(f"{path}", value, _LABEL_VALUE_HELP))
    return errors


def _validate_meta(obj: dict[str, Any]) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errors = validate_labels(meta.get("labels"), "metadata.labels")
    for key in meta.get("annotations") or {}:
        problem = _qualified_key(key)
        if problem:
            errors.append(_invalid("metadata.annotations", key, problem))
    return errors


def required_fields(value: Any, node: SchemaNode, path: str = "") -> list[FieldError]:
    """Fields the schema marks ``required`` that are missing (in present objects only)."""
    errors: list[FieldError] = []
    if not node.requires_any:
        return errors
    if isinstance(value, dict) and node.kind == "struct":
        for name in node.required:
            if value.get(name) is None:
                errors.append(_required(f"{path}.{name}" if path else name))
        for key, child in value.items():
            sub = node.field(key)
            if sub is not None and child is not None and key != "metadata":
                errors.extend(required_fields(child, sub, f"{path}.{key}" if path else key))
    elif isinstance(value, dict) and node.kind == "map":
        for key, child in value.items():
            errors.extend(required_fields(child, node.element, f"{path}[{key}]"))
    elif isinstance(value, list) and node.kind == "list":
        for index, item in enumerate(value):
            errors.extend(required_fields(item, node.element, f"{path}[{index}]"))
    return errors


def _pod_spec(spec: Any, path: str, *, job: bool = False) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(spec, dict):
        return [_required(path)]
    containers = spec.get("containers")
    if not containers:
        errors.append(_required(f"{path}.containers"))
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or ()):
            where = f"{path}.{key}[{index}]"
            if not isinstance(container, dict):
                continue
            name = container.get("name")
            if isinstance(name, str):
                if not _DNS1123_LABEL.match(name) or len(name) > 63:
                    errors.append(_invalid(f"{where}.name", name, _LABEL_HELP))
                if name in names:
                    errors.append(
                        FieldError(
                            f"{where}.name",
                            f"Duplicate value: {json.dumps(name)}",
                            reason="FieldValueDuplicate",
                        )
                    )
                names.add(name)
            image = container.get("image")
            if not isinstance(image, str) or not image.strip():
                errors.append(_required(f"{where}.image"))
    restart = spec.get("restartPolicy")
    if job and restart not in ("OnFailure", "Never"):
        errors.append(
            FieldError(
                f"{path}.restartPolicy",
                'Required value: valid values: "OnFailure", "Never"',
                reason="FieldValueRequired",
            )
        )
    return errors


def _workload(kind: str, obj: dict[str, Any], live: dict[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.append(_required("spec.selector"))
    elif not LabelSelector.from_label_selector(selector).matches(labels):
        errors.append(
            _invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    errors.extend(_pod_spec(template.get("spec"), "spec.template.spec"))
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        restart = (template.get("spec") or {}).get("restartPolicy")
        if restart not in (None, "Always"):
            errors.append(
                FieldError(
                    "spec.template.spec.restartPolicy",
                    f'Unsupported value: {json.dumps(restart)}: supported values: "Always"',
                    reason="FieldValueNotSupported",
                )
            )
    if live is not None:
        live_spec = live.get("spec") or {}
        if live_spec.get("selector") != selector and selector:
            errors.append(_invalid("spec.selector", selector, "field is immutable"))
        if kind == "StatefulSet":
            changed = {
                key
                for key in live_spec.keys() | spec.keys()
                if key not in _STATEFULSET_MUTABLE and live_spec.get(key) != spec.get(key)
            }
            if changed:
                errors.append(
                    _forbidden(
                        "spec",
                        "updates to statefulset spec for fields other than 'replicas', "
                        "'ordinals', 'template', 'updateStrategy', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                        "forbidden",
                    )
                )
    return errors


def _job(obj: dict[str, Any], live: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    errors = _pod_spec(template.get("spec"), "spec.template.spec", job=True)
    if live is not None:
        live_spec = live.get("spec") or {}
        if live_spec.get("template") != template:
            errors.append(_invalid("spec.template", template, "field is immutable"))
        if live_spec.get("selector") != spec.get("selector"):
            errors.append(_invalid("spec.selector", spec.get("selector"), "field is immutable"))
        if live_spec.get("completions") != spec.get("completions"):
            errors.append(
                _invalid("spec.completions", spec.get("completions"), "field is immutable")
            )
    return errors


def _service(obj: dict[str, Any], live: dict[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = obj.get("spec") or {}
    service_type = spec.get("type", "ClusterIP")
    ports = spec.get("ports") or []
    if service_type != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        errors.append(_required("spec.ports"))
    if len(ports) > 1:
        for index, port in enumerate(ports):
            if isinstance(port, dict) and not port.get("name"):
                errors.append(_required(f"spec.ports[{index}].name"))
    for index, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if isinstance(number, int) and not 1 <= number <= 65535:
            errors.append(
                _invalid(
                    f"spec.ports[{index}].port", number, "must be between 1 and 65535, inclusive"
                )
            )
    if live is not None:
        old_ip = (live.get("spec") or {}).get("clusterIP")
        if (
            old_ip
            and spec.get("clusterIP")
            and old_ip != spec["clusterIP"]
            and service_type != "ExternalName"
        ):
            errors.append(
                _invalid("spec.clusterIPs[0]", spec["clusterIP"], "may not change once set")
            )
    return errors


def _pvc(obj: dict[str, Any], live: dict[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = obj.get("spec") or {}
    if not spec.get("accessModes"):
        errors.append(_required("spec.accessModes", "at least 1 access mode is required"))
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None and not spec.get("volumeName"):
        errors.append(_required("spec.resources[storage]"))
    if live is not None:
        live_spec = dict(live.get("spec") or {})
        new_spec = dict(spec)
        for candidate in (live_spec, new_spec):
            candidate.pop("resources", None)
            candidate.pop("volumeName", None)
            candidate.pop("volumeAttributesClassName", None)
        if live_spec != new_spec:
            errors.append(
                _forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            )
    return errors


def _crd(obj: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    if not group:
        errors.append(_required("spec.group"))
    if not names.get("plural"):
        errors.append(_required("spec.names.plural"))
    if not names.get("kind"):
        errors.append(_required("spec.names.kind"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "spec.scope",
                f"Unsupported value: {json.dumps(spec.get('scope'))}: supported values: "
                '"Cluster", "Namespaced"',
                reason="FieldValueNotSupported",
            )
        )
    name = (obj.get("metadata") or {}).get("name")
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        errors.append(_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    versions = spec.get("versions") or []
    if not versions:
        errors.append(
            _required("spec.versions", "must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        errors.append(
            _invalid(
                "spec.versions", None, "must have exactly one version marked as storage version"
            )
        )
    return errors


def validate(
    resource: ResourceType, obj: dict[str, Any], live: dict[str, Any] | None
) -> list[FieldError]:
    """Every rule above that ``obj`` breaks (``live`` is the stored object on updates)."""
    errors = _validate_meta(obj)
    errors.extend(required_fields(_without_metadata(obj), resource.schema))
    kind = resource.kind
    if resource.custom:
        return errors
    if resource.group in ("apps", "") and kind in _WORKLOADS | {"ReplicationController"}:
        if kind == "ReplicationController":
            return errors
        errors.extend(_workload(kind, obj, live))
    elif resource.group == "batch" and kind == "Job":
        errors.extend(_job(obj, live))
    elif resource.group == "" and kind == "Pod":
        errors.extend(_pod_spec(obj.get("spec"), "spec"))
    elif resource.group == "" and kind == "Service":
        errors.extend(_service(obj, live))
    elif resource.group == "" and kind == "PersistentVolumeClaim":
        errors.extend(_pvc(obj, live))
    elif resource.group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition":
        errors.extend(_crd(obj))
    return errors


def _without_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "metadata"}
