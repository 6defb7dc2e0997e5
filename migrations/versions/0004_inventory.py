"""The inventory: every object a deployment applies, with one owner per object.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE deployment_objects (
    deployment_id  bigint NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    api_group      text NOT NULL,
    api_version    text NOT NULL,
    kind           text NOT NULL,
    namespace      text NOT NULL DEFAULT '',
    name           text NOT NULL,
    health         text,
    message        text NOT NULL DEFAULT '',
    applied_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- One owner per object: two deployments rendering the same object is refused, not a
    -- silent tug of war.  The API group, not the version: apps/v1 and apps/v1beta2 name the
    -- same object.  '' is the core group, and the namespace of a cluster-scoped object.
    CONSTRAINT deployment_objects_one_owner PRIMARY KEY (api_group, kind, namespace, name)
);

CREATE INDEX deployment_objects_by_deployment ON deployment_objects (deployment_id);

COMMENT ON TABLE deployment_objects IS
    'Every object a deployment applied; the daemon keeps it current.';

GRANT SELECT, INSERT, UPDATE, DELETE ON deployment_objects TO reconciler_daemon;

GRANT SELECT ON deployment_objects TO reconciler_reader;
"""

DOWNGRADE = r"""
DROP TABLE deployment_objects;
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
