"""Day-two commands: cancel, pause/resume, retry, redeploy (and restart), parked deployments.

What an admin (or ``reconciler cancel|pause|resume|retry|redeploy``) writes on a deployment row
to tell the daemon what to do beyond the desired state:

- ``cancel_requested_generation``: the generation whose in-flight rollout is to stop now; the
  attempt is recorded 'cancelled' and nothing retries until a new desired state arrives.
- ``paused``: the daemon claims nothing of the row (no apply, no prune); resuming picks up
  whatever changed meanwhile (generation, ops repo commit).  Not desired state: no new generation.
- ``redeploy_requested_at`` (and ``redeploy_restart``): apply again even when nothing changed
  (and restart its workloads the way ``kubectl rollout restart`` does); setting it bumps the
  generation, so the claim takes it; the daemon clears it when the attempt finishes.
- ``deployments_parked``: failed deployments no retry is scheduled for, waiting for a human.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE deployments
    ADD COLUMN cancel_requested_generation bigint,
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD COLUMN redeploy_requested_at timestamptz,
    ADD COLUMN redeploy_restart boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT deployments_attempt_action_known,
    ADD CONSTRAINT deployments_attempt_action_known
        CHECK (attempt_action IS NULL
               OR attempt_action IN ('deploy', 'rollback', 'stop', 'redeploy'));

ALTER TABLE deployment_history
    DROP CONSTRAINT deployment_history_action_known,
    ADD CONSTRAINT deployment_history_action_known
        CHECK (action IN ('deploy', 'rollback', 'stop', 'redeploy')),
    DROP CONSTRAINT deployment_history_status_known,
    ADD CONSTRAINT deployment_history_status_known
        CHECK (status IN ('healthy', 'failed', 'stopped', 'superseded', 'interrupted',
                          'cancelled'));

-- A redeploy request is a new generation (the claim takes it, an in-flight attempt is
-- superseded); the daemon clearing it is not.  Fires after deployments_before_write (name
-- order), which leaves the generation alone for columns that are not desired state.
CREATE FUNCTION deployments_redeploy_requested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.redeploy_requested_at IS NOT NULL
       AND NEW.redeploy_requested_at IS DISTINCT FROM OLD.redeploy_requested_at THEN
        NEW.generation := OLD.generation + 1;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER deployments_redeploy_requested
    BEFORE UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_redeploy_requested();

-- 0001's NOTIFY, plus: a cancel request ("cancel:<id>": the daemon ends that attempt's wait),
-- and pause, resume and retry ("wake:<id>": look at the database now, supersede nothing).
CREATE OR REPLACE FUNCTION deployments_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.generation <> OLD.generation THEN
        PERFORM pg_notify('reconciler', NEW.id::text);
    ELSIF NEW.cancel_requested_generation IS NOT NULL
          AND NEW.cancel_requested_generation IS DISTINCT FROM OLD.cancel_requested_generation
    THEN
        PERFORM pg_notify('reconciler', 'cancel:' || NEW.id::text);
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused
          OR (OLD.next_attempt_at IS NULL AND NEW.next_attempt_at IS NOT NULL
              AND NEW.attempts = 0) THEN
        PERFORM pg_notify('reconciler', 'wake:' || NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

-- New columns go last, so the view keeps its grants and its columns' order.
CREATE OR REPLACE VIEW deployment_status AS
SELECT d.project,
       d.environment,
       d.desired_status AS desired,
       d.current_status AS current,
       coalesce(d.current_image_ref, '') AS image,
       CASE WHEN d.image_ref IS DISTINCT FROM d.current_image_ref
            THEN d.image_ref ELSE '' END AS wanted_image,
       d.status_changed_at AS since,
       d.status_message AS message,
       coalesce(h.action || ' ' || h.status || ' at '
                || to_char(h.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z',
                '') AS last_action,
       d.paused
FROM deployments d
LEFT JOIN LATERAL (
    SELECT action, status, finished_at
    FROM deployment_history
    WHERE deployment_id = d.id
    ORDER BY id DESC
    LIMIT 1
) h ON true
ORDER BY d.project, d.environment;

-- The dead-letter queue: failed, and no retry scheduled (retries spent, a permanent failure,
-- or a cancelled rollout).  `reconciler retry PROJECT ENV` un-parks one.
CREATE VIEW deployments_parked AS
SELECT d.project,
       d.environment,
       d.attempts,
       d.status_changed_at AS since,
       d.status_message AS message
FROM deployments d
WHERE d.current_status = 'failed' AND d.next_attempt_at IS NULL
  AND d.generation = d.observed_generation
ORDER BY d.project, d.environment;

GRANT SELECT ON deployments_parked TO reconciler_reader, reconciler_daemon, reconciler_pipeline;
"""

DOWNGRADE = r"""
DROP VIEW deployments_parked;
CREATE OR REPLACE FUNCTION deployments_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.generation <> OLD.generation THEN
        PERFORM pg_notify('reconciler', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER deployments_redeploy_requested ON deployments;
DROP FUNCTION deployments_redeploy_requested();
-- A view cannot lose a column in place: recreate 0001's, and its grants from 0002.
DROP VIEW deployment_status;
CREATE VIEW deployment_status AS
SELECT d.project,
       d.environment,
       d.desired_status AS desired,
       d.current_status AS current,
       coalesce(d.current_image_ref, '') AS image,
       CASE WHEN d.image_ref IS DISTINCT FROM d.current_image_ref
            THEN d.image_ref ELSE '' END AS wanted_image,
       d.status_changed_at AS since,
       d.status_message AS message,
       coalesce(h.action || ' ' || h.status || ' at '
                || to_char(h.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z',
                '') AS last_action
FROM deployments d
LEFT JOIN LATERAL (
    SELECT action, status, finished_at
    FROM deployment_history
    WHERE deployment_id = d.id
    ORDER BY id DESC
    LIMIT 1
) h ON true
ORDER BY d.project, d.environment;
GRANT SELECT ON deployment_status TO reconciler_pipeline, reconciler_reader, reconciler_daemon;
DELETE FROM deployment_history WHERE status = 'cancelled' OR action = 'redeploy';
ALTER TABLE deployment_history
    DROP CONSTRAINT deployment_history_status_known,
    ADD CONSTRAINT deployment_history_status_known
        CHECK (status IN ('healthy', 'failed', 'stopped', 'superseded', 'interrupted')),
    DROP CONSTRAINT deployment_history_action_known,
    ADD CONSTRAINT deployment_history_action_known CHECK (action IN ('deploy', 'rollback', 'stop'));
UPDATE deployments SET attempt_action = 'deploy' WHERE attempt_action = 'redeploy';
ALTER TABLE deployments
    DROP CONSTRAINT deployments_attempt_action_known,
    ADD CONSTRAINT deployments_attempt_action_known
        CHECK (attempt_action IS NULL OR attempt_action IN ('deploy', 'rollback', 'stop')),
    DROP COLUMN redeploy_restart,
    DROP COLUMN redeploy_requested_at,
    DROP COLUMN paused,
    DROP COLUMN cancel_requested_generation;
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
