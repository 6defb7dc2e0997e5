"""SQLAlchemy tables matching ``migrations/`` (a test compares the two, so they cannot drift).

The migrations are the source of truth and carry what the models leave out: CHECK constraints,
triggers and the ``deployment_status`` view.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


def _timestamp(name: str, *, nullable: bool = True, default_now: bool = False) -> Column[object]:
    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=text("now()") if default_now else None,
    )


ops_repos = Table(
    "ops_repos",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("repo_url", Text, nullable=False),
    Column("branch", Text, nullable=False, server_default=text("'main'")),
    Column("path", Text, nullable=False, server_default=text("''")),
    Column("sync_interval_s", Integer, nullable=False, server_default=text("60")),
    _timestamp("last_synced_at"),
    Column("last_sha", Text),
    Column("last_error", Text),
    _timestamp("created_at", nullable=False, default_now=True),
    _timestamp("updated_at", nullable=False, default_now=True),
    UniqueConstraint("name", name="ops_repos_name_key"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("project", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("namespace", Text, nullable=False),
    Column(
        "ops_repo_id", BigInteger, ForeignKey("ops_repos.id", ondelete="RESTRICT"), nullable=False
    ),
    Column("image_ref", Text, nullable=False),
    Column("values_override", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("desired_status", Text, nullable=False, server_default=text("'active'")),
    Column("current_status", Text, nullable=False, server_default=text("'pending'")),
    Column("current_image_ref", Text),
    Column("current_sha", Text),
    Column("current_values", JSONB),
    _timestamp("deployed_at"),
    Column("status_message", Text, nullable=False, server_default=text("''")),
    _timestamp("status_changed_at", nullable=False, default_now=True),
    Column("generation", BigInteger, nullable=False, server_default=text("1")),
    Column("observed_generation", BigInteger, nullable=False, server_default=text("0")),
    _timestamp("created_at", nullable=False, default_now=True),
    _timestamp("updated_at", nullable=False, default_now=True),
    Column("claimed_by", Text),
    _timestamp("lease_expires_at"),
    _timestamp("attempt_started_at"),
    Column("attempt_action", Text),
    Column("attempt_image_ref", Text),
    Column("attempt_generation", BigInteger),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _timestamp("next_attempt_at"),
    Column("applied_digest", Text),
    UniqueConstraint("project", "environment", name="deployments_project_environment_key"),
    Index(
        "deployments_needing_work",
        "id",
        postgresql_where=text(
            "generation <> observed_generation OR current_status IN ('syncing', 'failed')"
        ),
    ),
    Index("deployments_ops_repo_id", "ops_repo_id"),
)

deployment_history = Table(
    "deployment_history",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column(
        "deployment_id",
        BigInteger,
        ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("generation", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("image_ref", Text, nullable=False),
    Column("sha", Text),
    Column("values_override", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("digest", Text),
    Column("message", Text, nullable=False, server_default=text("''")),
    Column("daemon", Text),
    _timestamp("started_at", nullable=False),
    _timestamp("finished_at", nullable=False, default_now=True),
    Column("duration_ms", Integer, nullable=False, server_default=text("0")),
    Index("deployment_history_by_deployment", "deployment_id", text("id DESC")),
)
