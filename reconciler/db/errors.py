"""Driver failures as reconciler's errors: retry later (unavailable) or never (refused).

Only this package sees asyncpg's and SQLAlchemy's exceptions; everything above it catches
:class:`~reconciler.errors.DatabaseError` and reads the class to decide whether to retry.
"""

from __future__ import annotations

import asyncpg
import sqlalchemy as sa

from reconciler.errors import (
    DatabaseError,
    DatabaseRefused,
    DatabaseUnavailable,
    RefusedWrite,
)

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    sa.exc.DBAPIError,
    sa.exc.TimeoutError,
)
"""What a statement on the engine may raise that :func:`database_error` translates."""

RAW_DRIVER_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, asyncpg.InterfaceError)
"""The same for statements sent to asyncpg itself: its client-side errors (a connection that
closed under it) are not wrapped by SQLAlchemy there."""

# SQLSTATE classes a retry can outlive: connection exceptions, serialization failures and
# deadlocks, insufficient resources, operator intervention (shutdown, "cannot connect now").
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def database_error(exc: BaseException, *, where: str) -> DatabaseError:
    """The error to raise for a driver failure talking to the server ``where`` (host:port/db)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    cls = DatabaseUnavailable if is_transient(exc) else DatabaseRefused
    if (
        isinstance(orig, OSError)
        or "connect" in type(orig).__name__.lower()
        or isinstance(exc, OSError)
    ):
        return cls(f"cannot reach PostgreSQL at {where}: {text}")
    return cls(f"PostgreSQL at {where}: {text.splitlines()[0] if text else text}")


def is_transient(exc: BaseException) -> bool:
    """Whether the same statement may succeed later: the server was unreachable, restarting,
    or dropped the connection, rather than refusing the statement itself."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError):
        return True  # no pooled connection became free: the server is slow or away
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True  # "connection is closed": SQLAlchemy calls it a disconnect too
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


# Words for constraints whose server message ("new row ... violates check constraint") does not
# say what is wrong; constraints raised by the trigger carry their own words.
CONSTRAINT_WORDS = {
    "ops_repos_name_key": "an ops repo with this name exists already",
    "ops_repos_name_is_slug": "the name must be lowercase letters, digits, '_' or '-'",
    "ops_repos_repo_url_not_blank": "the repository URL must not be empty or contain spaces",
    "ops_repos_path_is_relative": "the path must be relative and stay inside the repository",
    "deployments_image_ref_without_spaces": "image_ref must be non-empty, without spaces",
    "deployments_values_override_is_object": "values_override must be a JSON object",
    "deployments_desired_status_known": "desired_status must be active, stopped or rollback",
    "deployments_ops_repo_id_fkey": "ops_repo_id names no ops repo",
    "deployments_project_environment_key": "this project and environment exist already",
    "ops_repo_policies_ops_repo_id_fkey": "ops_repo_id names no ops repo",
    "ops_repo_policies_service_account_is_namespace_slash_name": "service_account must be "
    "NAMESPACE/NAME of a ServiceAccount",
    "ops_repo_policies_namespaces_are_patterns": "each namespace must be a DNS-1123 label, "
    "or a prefix of one ending in '*'",
    "api_tokens_name_key": "a token with this name exists already (revoked ones keep their names)",
    "api_tokens_name_is_slug": "the name must be lowercase letters, digits, '_' or '-'",
}


def refused_write(exc: DatabaseError, what: str) -> RefusedWrite:
    """A refused write, as the writer should read it: what, which rule, in words (with the
    column the rule is about, and whether it is a conflict with the state, for the API)."""
    orig = postgres_error(exc)
    constraint = getattr(orig, "constraint_name", None)
    sqlstate = getattr(orig, "sqlstate", None)
    # The message alone: a DETAIL (the trigger lists what would have been valid) is for psql.
    server_message = (getattr(orig, "message", None) or str(orig)) if orig is not None else str(exc)
    field = getattr(orig, "column_name", None) or _column_of(constraint)
    conflict = sqlstate in _CONFLICT_SQLSTATES or server_message.startswith("update or delete")
    if sqlstate == "22021" or "0x00" in server_message:
        message = f"{what}: text values must not contain NUL characters"
    elif constraint in CONSTRAINT_WORDS and "violates" in server_message:
        message = f"{what}: {CONSTRAINT_WORDS[constraint]} ({constraint})"
    elif constraint:
        message = f"{what}: {server_message} ({constraint})"
    else:
        message = f"{what}: {exc}"
    return RefusedWrite(message, field=field, conflict=conflict)


# A unique key taken, a generic integrity rule (a deployment still owning objects), an
# exclusion: the value may be fine, the state of the database is not.
_CONFLICT_SQLSTATES = frozenset({"23505", "23000", "23P01"})

_CONSTRAINED_COLUMNS = (
    "ops_repo_id",
    "values_override",
    "desired_status",
    "image_ref",
    "namespace",
    "project",
    "environment",
    "repo_url",
    "branch",
    "path",
    "sync_interval_s",
    "service_account",
    "namespaces",
    "token_hash",
    "scope",
    "name",
)


def _column_of(constraint: str | None) -> str | None:
    """The column a constraint named ``<table>_<column>_<rule>`` is about, if it is one we
    know of."""
    if not constraint:
        return None
    for table in ("deployments_", "ops_repo_policies_", "ops_repos_", "api_tokens_"):
        if constraint.startswith(table):
            rest = constraint.removeprefix(table)
            return next((c for c in _CONSTRAINED_COLUMNS if rest.startswith(c + "_")), None)
    return None


def postgres_error(exc: BaseException) -> asyncpg.PostgresError | None:
    """The server's error behind SQLAlchemy's and our wrappers, if there is one."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def shown(name: str) -> str:
    """A user-supplied name for a message: control characters escaped, long ones cut."""
    text = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
    return text if len(text) <= 64 else text[:61] + "..."
