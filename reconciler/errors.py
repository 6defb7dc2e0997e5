"""reconciler's own error hierarchy.

Errors from libraries (the Kubernetes client, git, asyncpg) are chained as ``__cause__`` so the
original detail is kept, while callers only ever catch these types.

Whether retrying the same input can ever succeed is decided by the class: every concrete error
is either :class:`Permanent` or :class:`Transient`.  Where one library failure can be either (an
HTTP status, a SQLSTATE), one function at the edge picks the class: :func:`kubernetes_error`
here, the database's classifier in ``reconciler.db.errors``.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error reconciler raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def permanent(self) -> bool:
        """Retrying the same input cannot succeed (decided by the class, never per instance)."""
        return isinstance(self, Permanent)


class Permanent(ReconcilerError):
    """Retrying the same input cannot succeed: wait for the input to change."""


class Transient(ReconcilerError):
    """The same input may succeed later: retry with backoff."""


class ConfigError(Permanent):
    """A setting from the environment is missing or malformed."""


class InputError(Permanent):
    """A row written by a pipeline (or a CLI argument) is invalid; retrying cannot help."""


class OpsRepoError(Transient):
    """An ops repo could not be cloned, fetched or checked out."""


class RenderError(Permanent):
    """A template, values file or rendered document is invalid.

    ``location`` is ``file`` or ``file:line`` relative to the project directory, when known.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class PolicyError(Permanent):
    """A render (or a deployment's namespace) breaks its ops repo's policy."""


class OwnershipError(Permanent):
    """A render names an object another deployment owns."""


class DatabaseError(ReconcilerError):
    """The database cannot be reached or refused a statement (see the two subclasses)."""


class DatabaseUnavailable(DatabaseError, Transient):
    """PostgreSQL could not be reached, was restarting, or dropped the connection."""


class DatabaseRefused(DatabaseError, Permanent):
    """PostgreSQL refused the statement itself (a constraint, a type, a missing object)."""


class KubernetesError(ReconcilerError):
    """The Kubernetes API refused or failed a request (see the two subclasses).

    ``status`` is the HTTP status (0 when the server could not be reached).
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubernetesUnavailable(KubernetesError, Transient):
    """The API server could not be reached, timed out, or answered 408/409/429/5xx."""


class KubernetesRejected(KubernetesError, Permanent):
    """The API server refused the request (4xx): the same request will be refused again."""


class HealthError(Transient):
    """A rollout became degraded, or did not become healthy in time."""


def is_permanent_status(status: int) -> bool:
    """4xx answers other than 408 (timeout), 409 (conflict) and 429 (throttled) are final."""
    return 400 <= status < 500 and status not in (408, 409, 429)


def kubernetes_error(message: str, *, status: int = 0, reason: str = "") -> KubernetesError:
    """The typed error for an answer of the API server (or its absence, ``status=0``)."""
    cls = KubernetesRejected if is_permanent_status(status) else KubernetesUnavailable
    return cls(message, status=status, reason=reason)


class RefusedWrite(InputError):
    """The database refused a write by its rules (a CHECK, a trigger, a key).

    ``field`` is the column the rule is about, when it says; ``conflict`` is true when the
    value is fine but the state is not (a name taken, a row still in use)."""

    def __init__(self, message: str, *, field: str | None = None, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict
