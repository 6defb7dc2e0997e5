"""Rendered YAML documents to Kubernetes objects (and back, for people to read)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml

from reconciler.errors import RenderError
from reconciler.render import libyaml
from reconciler.render.messages import type_name
from reconciler.render.printed import PrintedValues, SubstitutingLoader
from reconciler.render.yaml_loaders import ManifestLoader, yaml_error

CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        # core
        "Namespace",
        "Node",
        "PersistentVolume",
        "ComponentStatus",
        # apiextensions / apiregistration
        "CustomResourceDefinition",
        "APIService",
        # rbac
        "ClusterRole",
        "ClusterRoleBinding",
        # storage
        "StorageClass",
        "VolumeAttachment",
        "CSIDriver",
        "CSINode",
        "VolumeAttributesClass",
        # scheduling / node / networking
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "IPAddress",
        "ServiceCIDR",
        # admission
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        # certificates / flowcontrol / resource / internal
        "CertificateSigningRequest",
        "ClusterTrustBundle",
        "FlowSchema",
        "PriorityLevelConfiguration",
        "DeviceClass",
        "ResourceSlice",
        "StorageVersion",
        "StorageVersionMigration",
        # authentication / authorization reviews
        "TokenReview",
        "SelfSubjectReview",
        "SubjectAccessReview",
        "SelfSubjectAccessReview",
        "SelfSubjectRulesReview",
    }
)
"""Built-in kinds that live outside namespaces; every other kind gets the deployment namespace
when its manifest names none.  Custom cluster-scoped kinds are not known here: the API server
ignores a namespace on them, and the apply stage decides by discovery."""


def parse_documents(
    text: str, *, file_name: str, printed: PrintedValues | None = None
) -> Iterator[tuple[int, int, Any]]:
    """(1-based document index, 1-based first line, data) for each non-empty document.

    With ``printed``, the placeholders of printed values become the values (see :mod:`.printed`).
    libyaml parses when PyYAML has it (:mod:`.libyaml`); errors are worded by the pure-Python
    loader, which also parses whatever the fast path leaves to it.
    """
    if libyaml.AVAILABLE:
        try:
            yield from libyaml.documents(text, printed=printed)
            return
        except libyaml.NotForTheFastPath:
            pass
    loader = ManifestLoader(text) if printed is None else SubstitutingLoader(text, printed=printed)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            yield index, node.start_mark.line + 1, data
    except yaml.YAMLError as exc:
        raise yaml_error(exc, file_name=file_name) from exc
    finally:
        loader.dispose()


def check_object(document: Any, *, location: str, index: int) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise RenderError(
            f"document {index} is {type_name(document)}, not a mapping;"
            " every document must be one Kubernetes object",
            location=location,
        )
    for field in ("apiVersion", "kind"):
        _require_string(document.get(field), field=field, index=index, location=location)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        missing_or_bad = (
            "has no metadata" if metadata is None else "has metadata that is not a mapping"
        )
        raise RenderError(f"document {index} {missing_or_bad}", location=location)
    _require_string(metadata.get("name"), field="metadata.name", index=index, location=location)
    object_namespace = metadata.get("namespace")
    if object_namespace is not None and not isinstance(object_namespace, str):
        raise RenderError(
            f"document {index}: metadata.namespace must be a string,"
            f" not {type_name(object_namespace)}",
            location=location,
        )
    return document


def _require_string(value: Any, *, field: str, index: int, location: str) -> None:
    if value is None or value == "":
        raise RenderError(f"document {index} has no {field}", location=location)
    if not isinstance(value, str):
        raise RenderError(
            f"document {index}: {field} must be a string, not {type_name(value)}",
            location=location,
        )


def default_namespace(obj: dict[str, Any], *, namespace: str) -> None:
    if obj["kind"] in CLUSTER_SCOPED_KINDS:
        return
    if not obj["metadata"].get("namespace"):
        obj["metadata"]["namespace"] = namespace


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): what makes two manifests the same object."""
    api_version: str = obj["apiVersion"]
    group = api_version.rpartition("/")[0]
    return group, obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML (each document starting with ``---``), keys in their given order."""
    return yaml.safe_dump_all(
        [_plain(obj) for obj in objects],
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


def _plain(value: Any) -> Any:
    # safe_dump refuses Mapping subclasses it does not know; hand it plain dicts and lists
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
