"""Drift: what changed on the cluster since our apply, and who changed it (pure: no I/O).

``desired`` is the answer of a server-side apply dry-run of our manifest: the live object with our
fields merged in, defaulted by the server as the live one is.  Where it differs from ``live``,
someone else changed a field we set (or deleted the object).  Paths read like
``spec.template.spec.containers[name=web].image``: items of Kubernetes' keyed lists (containers
by ``name``, container ports by ``containerPort`` and ``protocol``...) are compared by key, like
the API server's merge does; other lists are compared whole.  Map keys that are not plain words
are quoted: ``metadata.labels["app.kubernetes.io/name"]``.

Who changed them is read from ``metadata.managedFields`` (the server-side apply field ownership,
``fieldsV1``): ``f:<field>`` for a field or map key, ``k:<json>`` for the item of a keyed list
whose keys are that JSON object, ``v:<json>`` for a member of a set, ``i:<index>`` for a list
position, ``.`` for the node itself; ``{}`` is a leaf owning the whole value beneath it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.cluster.compare import VOLATILE_METADATA

__all__ = [
    "DELETED",
    "IGNORED_ANNOTATIONS",
    "changed_by",
    "describe_drift",
    "drifted_fields",
    "format_path",
    "keyed_items",
    "parse_path",
]

DELETED = "(deleted)"
"""The one path :func:`drifted_fields` returns for an object that is no longer on the cluster."""

IGNORED_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)
"""Annotations written by controllers and kubectl as bookkeeping, never drift."""

MAX_LISTED_PATHS = 10
MAX_LISTED_MANAGERS = 5
_MAX_PATH_CHARS = 200
_MAX_MANAGER_CHARS = 128  # the API server's limit on field manager names
_MAX_DEPTH = 64  # deeper than any real object: compared whole below (a hostile object)

ItemKey = tuple[tuple[str, Any], ...]
"""The keys of one item of a keyed list, e.g. ``(("containerPort", 80), ("protocol", "TCP"))``."""
Segment = str | ItemKey
Path = tuple[Segment, ...]

# The list-map keys of the Kubernetes API (``x-kubernetes-list-map-keys``) for the lists met in
# workloads and Services; the first key set every item carries is used.  Container ports and
# Service ports are both "ports": told apart by their key fields.
_LIST_MAP_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "containers": (("name",),),
    "initContainers": (("name",),),
    "ephemeralContainers": (("name",),),
    "env": (("name",),),
    "volumes": (("name",),),
    "imagePullSecrets": (("name",),),
    "resourceClaims": (("name",),),
    "volumeMounts": (("mountPath",),),
    "volumeDevices": (("devicePath",),),
    "hostAliases": (("ip",),),
    "ports": (("containerPort", "protocol"), ("port", "protocol")),
    "topologySpreadConstraints": (("topologyKey", "whenUnsatisfiable"),),
}
# Key fields the server defaults: an item without one is keyed by the default, as the server
# (and so managedFields) does.
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

_PLAIN_FIELD = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_FIELD_AT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_KEY_NAME = re.compile(r"[A-Za-z0-9_]+")
_PLAIN_VALUE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./:@+-]*$")
_JSON_WORDS = frozenset({"true", "false", "null"})
_MISSING: Any = object()


def drifted_fields(*, desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[str]:
    """The paths where ``live`` differs from ``desired`` (status, server bookkeeping and
    :data:`IGNORED_ANNOTATIONS` left out), in the order of ``desired``; ``[DELETED]`` when
    ``live`` is None."""
    if live is None:
        return [DELETED]
    found: list[Path] = []
    _diff(_comparable(desired), _comparable(live), path=(), found=found)
    return list(dict.fromkeys(format_path(path) for path in found))


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    kept = {str(k): v for k, v in obj.items() if k != "status"}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        meta = {str(k): v for k, v in metadata.items() if k not in VOLATILE_METADATA}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping):
            rest = {k: v for k, v in annotations.items() if k not in IGNORED_ANNOTATIONS}
            if rest:
                meta["annotations"] = rest
            else:
                del meta["annotations"]
        kept["metadata"] = meta
    return kept


def _diff(desired: Any, live: Any, *, path: Path, found: list[Path]) -> None:
    desired = _MISSING if desired is None else desired
    live = _MISSING if live is None else live
    if desired is live or (type(desired) is type(live) and desired == live):
        return
    if len(path) < _MAX_DEPTH and isinstance(desired, Mapping) and isinstance(live, Mapping):
        for key in dict.fromkeys([*desired, *live]):
            child = (*path, str(key))
            _diff(desired.get(key, _MISSING), live.get(key, _MISSING), path=child, found=found)
        return
    if len(path) < _MAX_DEPTH and isinstance(desired, list) and isinstance(live, list):
        keyed_desired, keyed_live = _keyed(path, desired, live)
        if keyed_desired is not None and keyed_live is not None:
            for key in dict.fromkeys([*keyed_desired, *keyed_live]):
                child = (*path, key)
                before = keyed_desired.get(key, _MISSING)
                _diff(before, keyed_live.get(key, _MISSING), path=child, found=found)
            return
    found.append(path)


def _keyed(
    path: Path, desired: list[Any], live: list[Any]
) -> tuple[dict[ItemKey, Any] | None, dict[ItemKey, Any] | None]:
    """Both lists by item key, when ``path`` names a keyed list and every item has its keys
    once; (None, None) to compare them whole."""
    field = path[-1] if path and isinstance(path[-1], str) else None
    for names in _LIST_MAP_KEYS.get(field or "", ()):
        keyed_desired, keyed_live = _by_key(desired, names), _by_key(live, names)
        if keyed_desired is not None and keyed_live is not None:
            return keyed_desired, keyed_live
    return None, None


def keyed_items(field: str, items: list[Any]) -> dict[ItemKey, Any] | None:
    """The items of the list named ``field`` by item key, when it is one of Kubernetes' keyed
    lists and every item has its keys once; None when it is compared whole."""
    for names in _LIST_MAP_KEYS.get(field, ()):
        keyed = _by_key(items, names)
        if keyed is not None:
            return keyed
    return None


def _by_key(items: list[Any], names: tuple[str, ...]) -> dict[ItemKey, Any] | None:
    keyed: dict[ItemKey, Any] = {}
    for item in items:
        if not isinstance(item, Mapping):
            return None
        values = []
        for name in names:
            value = item.get(name, _KEY_DEFAULTS.get(name))
            if value is None or isinstance(value, Mapping | list):
                return None
            values.append((name, value))
        key = tuple(values)
        if key in keyed:
            return None  # duplicate keys: the server keeps such a list as a whole
        keyed[key] = item
    return keyed


def format_path(path: Path) -> str:
    """``spec.template.spec.containers[name=web].image``, ``metadata.labels["a.b/c"]``."""
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, tuple):
            keys = ",".join(f"{name}={_format_value(value)}" for name, value in segment)
            parts.append(f"[{keys}]")
        elif _PLAIN_FIELD.match(segment):
            parts.append(f".{segment}" if parts else segment)
        else:
            parts.append(f"[{json.dumps(segment)}]")
    return "".join(parts)


def _format_value(value: Any) -> str:
    if isinstance(value, str) and _PLAIN_VALUE.match(value) and value not in _JSON_WORDS:
        return value
    return json.dumps(value)


def parse_path(text: str) -> Path | None:
    """The segments of a path :func:`format_path` wrote; None for anything else."""
    decoder = json.JSONDecoder()
    segments: list[Segment] = []
    position = 0
    try:
        while position < len(text):
            if text[position] == "[" and text.startswith('["', position):
                name, position = decoder.raw_decode(text, position + 1)
                if not isinstance(name, str) or text[position : position + 1] != "]":
                    return None
                segments.append(name)
                position += 1
            elif text[position] == "[":
                key, position = _parse_item_key(text, position + 1, decoder)
                segments.append(key)
            else:
                if segments and text[position] != ".":
                    return None
                position += 1 if segments else 0
                match = _FIELD_AT.match(text, position)
                if match is None:
                    return None
                segments.append(match.group())
                position = match.end()
    except (ValueError, IndexError):
        return None
    return tuple(segments) if segments else None


def _parse_item_key(text: str, position: int, decoder: json.JSONDecoder) -> tuple[ItemKey, int]:
    pairs: list[tuple[str, Any]] = []
    while True:
        equals = text.index("=", position)
        name = text[position:equals]
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(name)
        position = equals + 1
        value: Any
        if text[position] == '"':
            value, position = decoder.raw_decode(text, position)
        else:
            end = min(i for i in (text.find(",", position), text.find("]", position)) if i >= 0)
            raw = text[position:end]
            value = raw if _PLAIN_VALUE.match(raw) and raw not in _JSON_WORDS else json.loads(raw)
            position = end
        pairs.append((name, value))
        if text[position] == "]":
            return tuple(pairs), position + 1
        if text[position] != ",":
            raise ValueError(text[position])
        position += 1


# The manager names real clusters record (checked against kubectl's source and managedFields
# dumps): `kubectl set image` patches with its --field-manager default "kubectl-set" (Update).
# `kubectl scale` has no --field-manager flag and patches the scale subresource without one, so
# the API server names the manager after the User-Agent's first word: "kubectl" (Update,
# subresource "scale"), not "kubectl-scale".  `kubectl edit`, `patch`, `label` and `annotate`
# record "kubectl-edit", "kubectl-patch", "kubectl-label", "kubectl-annotate".  Controllers of
# kube-controller-manager (the deployment controller, an HPA through the scale subresource) are
# named after its User-Agent too: "kube-controller-manager".


@dataclass(frozen=True)
class _Entry:
    """One ``metadata.managedFields`` entry."""

    manager: str
    operation: str
    subresource: str
    time: dt.datetime | None
    fields: Mapping[str, Any]
    index: int

    @property
    def label(self) -> str:
        if self.subresource:
            return f"{self.manager} ({self.operation}, {self.subresource} subresource)"
        return f"{self.manager} ({self.operation})"


def changed_by(*, live: Mapping[str, Any], paths: Sequence[str], our_manager: str) -> list[str]:
    """The field managers other than ``our_manager`` that own ``paths`` in ``live``'s
    ``metadata.managedFields``, newest first, e.g. ``kubectl-set (Update)`` or ``kubectl
    (Update, scale subresource)``.  A path no entry covers (a field someone removed: nobody
    owns it now) is put down to the managers that wrote after our last apply, leaving out
    those that only write status or bookkeeping (a controller's status update).  Entries
    without a time come last."""
    entries = _entries(live)
    others = [e for e in entries if e.manager != our_manager]
    our_times = [e.time for e in entries if e.manager == our_manager and e.time is not None]
    our_last = max(our_times, default=None)
    chosen: dict[int, _Entry] = {}
    for text in paths:
        if text == DELETED:
            continue
        path = parse_path(text)
        covering = [e for e in others if path is not None and _covers(e.fields, path)]
        if not covering:
            covering = [
                e
                for e in others
                if e.time is not None
                and (our_last is None or e.time > our_last)
                and not _only_bookkeeping(e.fields, prefix=())
            ]
        chosen.update((e.index, e) for e in covering)
    ordered = sorted(
        chosen.values(),
        key=lambda e: (e.time is None, -(e.time.timestamp() if e.time else 0.0), e.index),
    )
    return list(dict.fromkeys(e.label for e in ordered))


def _entries(live: Mapping[str, Any]) -> list[_Entry]:
    """The well-formed managedFields entries of ``live`` (anything malformed is skipped)."""
    metadata = live.get("metadata")
    raw = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(raw, list):
        return []
    entries = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("manager"), str):
            continue
        fields = item.get("fieldsV1")
        entries.append(
            _Entry(
                manager=_printable(item["manager"])[:_MAX_MANAGER_CHARS],
                operation=_printable(str(item.get("operation") or "?"))[:20],
                subresource=_printable(str(item.get("subresource") or ""))[:40],
                time=_parse_time(item.get("time")),
                fields=fields if isinstance(fields, Mapping) else {},
                index=index,
            )
        )
    return entries


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _covers(fields: Mapping[str, Any], path: Path) -> bool:
    """Whether the fieldsV1 set ``fields`` owns ``path`` (or a leaf above it: an atomic value
    owned whole)."""
    node: Any = fields
    for segment in path:
        if not isinstance(node, Mapping):
            return False
        if not node:
            return node is not fields  # a leaf owns all beneath; an empty set owns nothing
        node = _child(node, segment)
        if node is None:
            return False
    return True


def _child(node: Mapping[str, Any], segment: Segment) -> Any:
    if isinstance(segment, str):
        return node.get(f"f:{segment}")
    wanted = dict(segment)
    for key, child in node.items():
        if isinstance(key, str) and key.startswith("k:"):
            try:
                keys = json.loads(key[2:])
            except ValueError:
                continue
            if keys == wanted:
                return child
    return None


def writes_content(entry: Mapping[str, Any]) -> bool:
    """Whether a managedFields entry owns more than status and bookkeeping (a controller's
    revision annotation): only such a manager can have drifted the object."""
    if entry.get("subresource") == "status":
        return False
    fields = entry.get("fieldsV1")
    return not isinstance(fields, Mapping) or not _only_bookkeeping(fields, prefix=())


def _only_bookkeeping(fields: Mapping[str, Any], *, prefix: tuple[str, ...]) -> bool:
    """Whether every field ``fields`` owns is status or bookkeeping :func:`drifted_fields`
    ignores (so its manager cannot have caused drift)."""
    for key, child in fields.items():
        if key == ".":
            continue
        name = key[2:] if isinstance(key, str) and key.startswith("f:") else None
        path = (*prefix, name) if name is not None else (*prefix, "?")
        if _ignored(path):
            continue
        if len(path) >= 3 or not isinstance(child, Mapping) or not child:
            return False
        if not _only_bookkeeping(child, prefix=path):
            return False
    return True


def _ignored(path: tuple[str, ...]) -> bool:
    if path[:1] == ("status",):
        return True
    if len(path) >= 2 and path[0] == "metadata":
        if path[1] in (*VOLATILE_METADATA, "managedFields"):
            return True
        return len(path) >= 3 and path[1] == "annotations" and path[2] in IGNORED_ANNOTATIONS
    return False


def describe_drift(ref_text: str, paths: Sequence[str], managers: Sequence[str]) -> str:
    """One line for logs and history: ``Deployment app/web: spec.replicas changed by kubectl
    (Update, scale subresource)``, or ``Deployment app/web was deleted``.  At most
    :data:`MAX_LISTED_PATHS` paths and :data:`MAX_LISTED_MANAGERS` managers are named."""
    if DELETED in paths:
        return f"{ref_text} was deleted"
    fields = _bounded([p[:_MAX_PATH_CHARS] for p in paths], limit=MAX_LISTED_PATHS)
    if not managers:
        return f"{ref_text}: {fields or 'nothing'} changed (by a field manager not recorded)"
    return f"{ref_text}: {fields} changed by {_bounded(managers, limit=MAX_LISTED_MANAGERS)}"


def _bounded(items: Sequence[str], *, limit: int) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown
