"""reconciler's own error hierarchy.

Errors from libraries (the Kubernetes client, git, asyncpg) are chained as ``__cause__`` so the
original detail is kept, while callers only ever catch these types.  ``permanent`` tells the
reconcile loop whether retrying the same input can ever succeed.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error reconciler raises on purpose."""

    permanent: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ReconcilerError):
    """A setting from the environment is missing or malformed."""

    permanent = True


class DatabaseError(ReconcilerError):
    """The database cannot be reached or refused a statement."""


class InputError(ReconcilerError):
    """A row written by a pipeline (or a CLI argument) is invalid; retrying cannot help."""

    permanent = True


class OpsRepoError(ReconcilerError):
    """An ops repo could not be cloned, fetched or checked out."""


class RenderError(ReconcilerError):
    """A template, values file or rendered document is invalid.

    ``location`` is ``file`` or ``file:line`` relative to the project directory, when known.
    """

    permanent = True

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class KubernetesError(ReconcilerError):
    """The Kubernetes API refused or failed a request.

    ``status`` is the HTTP status (0 when the server could not be reached).  4xx answers other
    than 408/409/429 are permanent: the same request will be refused again.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.permanent = 400 <= status < 500 and status not in (408, 409, 429)


class HealthError(ReconcilerError):
    """A rollout became degraded, or did not become healthy in time."""
