"""GET of one object, and lists: label and field selectors, ``limit`` and ``continue``.

Reads always answer the latest state (a ``resourceVersion`` on a read is not honoured).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .api_errors import bad_request, not_found
from .resource_types import ResourceType
from .storage import ObjectStorage
from .store import FieldSelector, LabelSelector, SelectorError

ObjectKey = tuple[str, str]  # (namespace or "", name): the order lists are in


class Reads:
    """Gets and lists."""

    def __init__(self, objects: ObjectStorage) -> None:
        self.objects = objects

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The object, or 404."""
        obj = self.objects.find(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return self.objects.present(resource, obj)

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """A list object, filtered and paginated as the apiserver does."""
        objects = self.objects
        labels, fields = self.selectors(resource, label_selector, field_selector)
        start = _continue_start(continue_token) if continue_token else None
        version = objects.store.resource_version
        items: list[dict[str, Any]] = []
        remaining = 0
        next_start: ObjectKey | None = None
        for obj in objects.store.objects(objects.types.storage_key(resource), namespace):
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start is not None and key <= start:
                continue
            if not labels.matches(meta.get("labels") or {}) or not fields.matches(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
            next_start = key
        result_meta: dict[str, Any] = {"resourceVersion": str(version)}
        if remaining and next_start is not None:
            result_meta["continue"] = _continue_token(next_start, version)
            result_meta["remainingItemCount"] = remaining
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": result_meta,
            "items": self._shown(resource, items),
        }

    def _shown(self, resource: ResourceType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """List items as a real server shows them: without apiVersion/kind, but for CRs."""
        if resource.custom:
            return [self.objects.present(resource, obj) for obj in items]
        return [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]

    def selectors(
        self, resource: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelSelector, FieldSelector]:
        """Parsed selectors, or 400."""
        try:
            return (
                LabelSelector(label_selector),
                FieldSelector(field_selector, kind="" if resource.custom else resource.kind),
            )
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc


def _continue_start(token: str) -> ObjectKey:
    """The key a ``continue`` token starts after, or 400."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        return (str(decoded["start"][0]), str(decoded["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise bad_request(f"invalid continue token: {exc}") from exc


def _continue_token(start: ObjectKey, version: int) -> str:
    token = json.dumps({"start": list(start), "rv": version}).encode()
    return base64.urlsafe_b64encode(token).decode()
