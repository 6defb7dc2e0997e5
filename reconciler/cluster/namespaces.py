"""The namespaces this daemon's applies already found or created, so that an attempt need not
apply the deployment's implicit Namespace again (one round trip of three, per deployment).

Kubernetes stays the judge: this memory only says which namespaces to *skip*; when a skipped
namespace turns out to be gone (a namespaced apply answered 404 NotFound), the apply forgets
it, applies the Namespace as every attempt did before, and tries again
(:func:`reconciler.cluster.apply.apply_all`).  It is remembered per user the requests are made
as: an impersonated user who may not touch Namespaces is refused as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from reconciler.errors import KubernetesError

DEFAULT_LIMIT = 10_000
"""Namespaces remembered at most (the least recently used go first): far more than a daemon's
deployments, a few hundred kilobytes at worst."""


class KnownNamespaces:
    """Namespaces seen to exist, per user (None: the daemon itself); bounded, least recently
    used forgotten first.  One per daemon process, lent to every attempt."""

    def __init__(self, *, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._seen: OrderedDict[tuple[str | None, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def holds(self, namespace: str, *, user: str | None) -> bool:
        key = (user, namespace)
        if key not in self._seen:
            return False
        self._seen.move_to_end(key)
        return True

    def remember(self, namespace: str, *, user: str | None) -> None:
        self._seen[(user, namespace)] = None
        self._seen.move_to_end((user, namespace))
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)

    def forget(self, namespace: str, *, user: str | None) -> None:
        self._seen.pop((user, namespace), None)

    def seen_by(self, user: str | None) -> SeenNamespaces:
        """The namespaces seen by requests made as ``user``."""
        return SeenNamespaces(known=self, user=user)


@dataclass(frozen=True)
class SeenNamespaces:
    """:class:`KnownNamespaces` for the one user an attempt's requests are made as."""

    known: KnownNamespaces
    user: str | None

    def holds(self, namespace: str) -> bool:
        return self.known.holds(namespace, user=self.user)

    def remember(self, namespace: str) -> None:
        self.known.remember(namespace, user=self.user)

    def forget(self, namespace: str) -> None:
        self.known.forget(namespace, user=self.user)


def seen_by(known: KnownNamespaces | None, user: str | None) -> SeenNamespaces | None:
    """``known`` for ``user``; None (apply the Namespace every time) without one."""
    return None if known is None else known.seen_by(user)


def may_be_missing_namespace(error: KubernetesError) -> bool:
    """Whether an apply's refusal can mean its namespace does not exist: the apiserver answers
    404 NotFound (``namespaces "X" not found``).  Any other 404 NotFound (a kind removed since
    discovery) is let through too: applying the Namespace and retrying costs two requests and
    ends in the same refusal."""
    return error.status == 404 and error.reason == "NotFound"
