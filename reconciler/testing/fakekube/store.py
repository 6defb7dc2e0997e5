"""The object store: objects by resource, a global resourceVersion, watch history and watchers.

Stored objects are never mutated: every write stores a new dict, so the history of watch events
can keep references to old versions and readers never see a half-written object.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ... import jsoncodec

ResourceKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)

#: How many events the watch history keeps per resource (a real apiserver's watch cache holds a
#: similar window); a watch from an older resourceVersion gets 410 Gone.
HISTORY_SIZE = 1_000


class SelectorError(ValueError):
    """A label or field selector cannot be parsed, or names an unsupported field."""


@dataclass
class WatchEvent:
    """One change, as watchers and controllers see it."""

    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceKey
    object: dict[str, Any]
    old: dict[str, Any] | None = None
    _encoded: bytes | None = field(default=None, repr=False)

    def encoded_object(self) -> bytes:
        """The object as JSON, encoded once however many watchers read it."""
        if self._encoded is None:
            # Stored objects hold no NaN or infinity (bodies with one are refused).
            self._encoded = jsoncodec.dumps_decoded(self.object)
        return self._encoded


class Watcher:
    """A watch: a filter and a queue of events; ``None`` on the queue ends it."""

    def __init__(
        self,
        *,
        resource: ResourceKey,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[tuple[str, WatchEvent] | None] = asyncio.Queue()

    def matches(self, obj: dict[str, Any] | None) -> bool:
        """True when ``obj`` passes this watch's namespace and selectors."""
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels") or {}) and self.fields.matches(obj)

    def translate(self, event: WatchEvent) -> str | None:
        """The event type this watcher sees (an object moving in or out of its selection)."""
        now = self.matches(event.object)
        if event.type == "DELETED":
            return "DELETED" if now else None
        before = self.matches(event.old) if event.old is not None else False
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None


class Store:
    """Every object fakekube holds."""

    def __init__(self, *, history_size: int = HISTORY_SIZE) -> None:
        self.resource_version = 1000
        self._history_size = history_size
        self._objects: dict[ResourceKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._dependents: dict[str, set[tuple[ResourceKey, ObjectKey]]] = {}
        self._by_uid: dict[str, tuple[ResourceKey, ObjectKey]] = {}
        self._history: dict[ResourceKey, deque[WatchEvent]] = {}
        self._watchers: dict[ResourceKey, set[Watcher]] = {}
        self.listeners: list[Callable[[WatchEvent], None]] = []

    # -- reads --

    def get(self, resource: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        return self._objects.get(resource, {}).get((namespace, name))

    def objects(
        self, resource: ResourceKey, namespace: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Objects of a resource in key order (namespace, name), optionally of one namespace."""
        table = self._objects.get(resource, {})
        for key in sorted(table):
            if namespace is None or key[0] == namespace:
                yield table[key]

    def count(self) -> int:
        """How many objects are stored."""
        return sum(len(table) for table in self._objects.values())

    def by_uid(self, uid: str) -> tuple[ResourceKey, dict[str, Any]] | None:
        """The resource and object with ``uid``, or None."""
        found = self._by_uid.get(uid)
        if found is None:
            return None
        obj = self._objects.get(found[0], {}).get(found[1])
        return (found[0], obj) if obj is not None else None

    def dependents(self, owner_uid: str) -> list[tuple[ResourceKey, ObjectKey]]:
        """Objects whose ownerReferences name ``owner_uid``."""
        return sorted(self._dependents.get(owner_uid, ()))

    # -- writes --

    def next_version(self) -> int:
        """A new resourceVersion."""
        self.resource_version += 1
        return self.resource_version

    def put(
        self, resource: ResourceKey, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> WatchEvent:
        """Stores ``obj`` (its resourceVersion already set) and announces it."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        self._objects.setdefault(resource, {})[key] = obj
        self._by_uid[meta["uid"]] = (resource, key)
        self._index_owners(resource, key, old, obj)
        event = WatchEvent(
            int(meta["resourceVersion"]),
            "MODIFIED" if old is not None else "ADDED",
            resource,
            obj,
            old,
        )
        self._publish(event)
        return event

    def remove(self, resource: ResourceKey, obj: dict[str, Any]) -> WatchEvent:
        """Removes ``obj`` (the final state, with a new resourceVersion) and announces it."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        old = self._objects.get(resource, {}).pop(key, None)
        self._by_uid.pop(meta.get("uid", ""), None)
        self._index_owners(resource, key, old, None)
        event = WatchEvent(int(meta["resourceVersion"]), "DELETED", resource, obj, old)
        self._publish(event)
        return event

    def _index_owners(
        self,
        resource: ResourceKey,
        key: ObjectKey,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        old_owners = _owner_uids(old)
        new_owners = _owner_uids(new)
        if old_owners == new_owners:
            return
        entry = (resource, key)
        for uid in old_owners - new_owners:
            dependents = self._dependents.get(uid)
            if dependents is not None:
                dependents.discard(entry)
                if not dependents:
                    del self._dependents[uid]
        for uid in new_owners - old_owners:
            self._dependents.setdefault(uid, set()).add(entry)

    def _publish(self, event: WatchEvent) -> None:
        history = self._history.get(event.resource)
        if history is None:
            history = self._history[event.resource] = deque(maxlen=self._history_size)
        history.append(event)
        for watcher in self._watchers.get(event.resource, ()):
            seen_as = watcher.translate(event)
            if seen_as is not None:
                watcher.queue.put_nowait((seen_as, event))
        for listener in self.listeners:
            listener(event)

    # -- watches --

    @property
    def history_size(self) -> int:
        """How many events the watch history keeps per resource."""
        return self._history_size

    @history_size.setter
    def history_size(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"the watch history must keep at least 1 event, not {size}")
        self._history_size = size
        # A shorter history forgets its oldest events, as a compaction would.
        self._history = {
            resource: deque(events, maxlen=size) for resource, events in self._history.items()
        }

    def add_watcher(self, watcher: Watcher) -> None:
        """Starts delivering events to ``watcher``."""
        self._watchers.setdefault(watcher.resource, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        """Stops delivering events to ``watcher``."""
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def close_watchers(self) -> None:
        """Ends every watch (the server is going down)."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)

    def oldest_replayable(self, resource: ResourceKey) -> int:
        """The lowest resourceVersion a watch of ``resource`` may start from."""
        history = self._history.get(resource)
        if history is None or len(history) < (history.maxlen or 0):
            return 0
        return history[0].resource_version - 1

    def events_since(self, resource: ResourceKey, version: int) -> list[WatchEvent]:
        """History events of ``resource`` newer than ``version``."""
        history = self._history.get(resource, ())
        return [event for event in history if event.resource_version > version]


def _owner_uids(obj: dict[str, Any] | None) -> set[str]:
    if obj is None:
        return set()
    refs = obj.get("metadata", {}).get("ownerReferences") or ()
    return {ref["uid"] for ref in refs if isinstance(ref, dict) and "uid" in ref}


# ---------------------------------------------------------------------------------------------
# Selectors

_LABEL_TERM = re.compile(
    r"""^\s*(?:
        (?P<neg>!)\s*(?P<absent>[^\s,=!()]+)
      | (?P<key>[^\s,=!()]+)\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>[^\s,=!()]*)
          | \s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
        )?
    )\s*$""",
    re.X,
)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


class LabelSelector:
    """A parsed ``labelSelector`` query parameter."""

    def __init__(self, text: str | None = None) -> None:
        self.requirements: list[tuple[str, str, tuple[str, ...]]] = []
        if not text:
            return
        for term in _split_terms(text):
            match = _LABEL_TERM.match(term)
            if match is None:
                raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
            if match["absent"]:
                self.requirements.append((match["absent"], "!", ()))
            elif match["op"]:
                op = "!=" if match["op"] == "!=" else "="
                self.requirements.append((match["key"], op, (match["value"],)))
            elif match["setop"]:
                values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
                self.requirements.append((match["key"], match["setop"], values))
            else:
                self.requirements.append((match["key"], "exists", ()))

    @classmethod
    def from_label_selector(cls, selector: dict[str, Any] | None) -> LabelSelector:
        """The selector an object's ``spec.selector`` (matchLabels/matchExpressions) means."""
        result = cls()
        if selector is None:
            return result
        for key, value in (selector.get("matchLabels") or {}).items():
            result.requirements.append((key, "=", (str(value),)))
        for expression in selector.get("matchExpressions") or ():
            operator = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[
                expression["operator"]
            ]
            values = tuple(str(v) for v in expression.get("values") or ())
            result.requirements.append((expression["key"], operator, values))
        return result

    def matches(self, labels: dict[str, Any]) -> bool:
        """True when ``labels`` satisfy every requirement."""
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "=" and value != values[0]:
                return False
            if op == "!=" and present and value == values[0]:
                return False
            if op == "in" and value not in values:
                return False
            if op == "notin" and present and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for key, op, values in self.requirements:
            if op in ("=", "!="):
                parts.append(f"{key}{op}{values[0]}")
            elif op in ("in", "notin"):
                parts.append(f"{key} {op} ({','.join(values)})")
            elif op == "exists":
                parts.append(key)
            else:
                parts.append(f"!{key}")
        return ",".join(parts)


# Field labels the apiserver supports beyond metadata.name and metadata.namespace.
_FIELD_LABELS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Secret": frozenset({"type"}),
    "Namespace": frozenset({"status.phase"}),
    "Node": frozenset({"spec.unschedulable"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "ReplicationController": frozenset({"status.replicas"}),
    "Job": frozenset({"status.successful"}),
    "CertificateSigningRequest": frozenset({"spec.signerName"}),
}


class FieldSelector:
    """A parsed ``fieldSelector`` query parameter."""

    def __init__(self, text: str | None = None, *, kind: str = "") -> None:
        self.requirements: list[tuple[str, bool, str]] = []
        if not text:
            return
        allowed = _FIELD_LABELS.get(kind, frozenset()) | {"metadata.name", "metadata.namespace"}
        for term in text.split(","):
            term = term.strip()
            if not term:
                continue
            if "!=" in term:
                path, _, value = term.partition("!=")
                equal = False
            elif "==" in term:
                path, _, value = term.partition("==")
                equal = True
            elif "=" in term:
                path, _, value = term.partition("=")
                equal = True
            else:
                raise SelectorError(f"invalid selector: {term!r}; can't understand {term!r}")
            path = path.strip()
            if path not in allowed:
                raise SelectorError(f"field label not supported: {path}")
            self.requirements.append((path, equal, value.strip()))

    def matches(self, obj: dict[str, Any]) -> bool:
        """True when ``obj`` satisfies every requirement."""
        for path, equal, value in self.requirements:
            current: Any = obj
            for part in path.split("."):
                current = current.get(part) if isinstance(current, dict) else None
            text = (
                ""
                if current is None
                else str(current).lower()
                if isinstance(current, bool)
                else str(current)
            )
            if (text == value) != equal:
                return False
        return True

    def single_name(self) -> str | None:
        """The name a ``metadata.name=X`` selector pins, if any."""
        for path, equal, value in self.requirements:
            if path == "metadata.name" and equal:
                return value
        return None
