"""What the attempt state machine needs to decide from the database alone.

``deployments.attempt_values``: the values the open attempt renders with, so a dead daemon's
attempt is closed as 'interrupted' with what it was applying, not with what a pipeline wrote
since.  ``deployments.rendered_sha``: the ops repo commit the deployment was last rendered at,
so whether a commit still needs rendering is read from the row (not from one daemon's memory);
existing rows take their current_sha, so upgrading re-renders nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE deployments
    ADD COLUMN attempt_values jsonb,
    ADD COLUMN rendered_sha text;

UPDATE deployments SET rendered_sha = current_sha;

-- The claim's "ops repo moved" branch: per repo, the rows whose rendered_sha is below or above
-- the repo's last_sha (or unset) are two range probes of this index, so a fleet rendered at the
-- current commit costs nothing to poll.
CREATE INDEX deployments_rendered_sha ON deployments (ops_repo_id, rendered_sha)
    WHERE desired_status IN ('active', 'rollback') AND current_status IN ('healthy', 'failed');
"""

DOWNGRADE = r"""
DROP INDEX deployments_rendered_sha;
ALTER TABLE deployments
    DROP COLUMN rendered_sha,
    DROP COLUMN attempt_values;
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
