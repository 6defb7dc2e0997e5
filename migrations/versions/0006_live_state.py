"""Live state: heal drift, prune, delete, health after healthy, rollback to a chosen row.

What the daemon now records of the cluster after an attempt, and what writers may ask for:

- ``current_status`` gains ``degraded`` (a healthy deployment whose objects failed later),
  ``drifted`` (someone changed a managed object and healing is off) and ``deleted``;
  ``desired_status`` gains ``deleted`` (remove every object the deployment owns).
- ``self_heal``: NULL follows the daemon's ``RECONCILER_SELF_HEAL``; false leaves drift alone
  (the deployment shows ``drifted``).  Turning it on again heals what drifted.
- ``prune_all_allowed``: a render that would prune every object the deployment owns (an empty
  render, a renamed project) is refused unless this is true.
- ``heal_requested_at``: set by the daemon when the watch saw a managed object change or vanish;
  the claim takes it like any other work.
- ``rollback_to``: with ``desired_status = 'rollback'``, the history row to return to (NULL: the
  newest healthy deploy of another image); the history row of the rollback names it in
  ``rolled_back_to``.
- A deployment row that still owns objects cannot be deleted (they would be orphaned): set
  ``desired_status = 'deleted'`` first.  History outlives the row (0002).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE deployments
    ADD COLUMN self_heal boolean,
    ADD COLUMN prune_all_allowed boolean NOT NULL DEFAULT false,
    ADD COLUMN heal_requested_at timestamptz,
    ADD COLUMN rollback_to bigint
        REFERENCES deployment_history (id) ON DELETE SET NULL,
    DROP CONSTRAINT deployments_desired_status_known,
    ADD CONSTRAINT deployments_desired_status_known
        CHECK (desired_status IN ('active', 'stopped', 'rollback', 'deleted')),
    DROP CONSTRAINT deployments_current_status_known,
    ADD CONSTRAINT deployments_current_status_known
        CHECK (current_status IN ('pending', 'syncing', 'healthy', 'failed', 'stopped',
                                  'degraded', 'drifted', 'deleted')),
    DROP CONSTRAINT deployments_attempt_action_known,
    ADD CONSTRAINT deployments_attempt_action_known
        CHECK (attempt_action IS NULL
               OR attempt_action IN ('deploy', 'rollback', 'stop', 'redeploy', 'heal',
                                     'delete'));

ALTER TABLE deployment_history
    ADD COLUMN rolled_back_to bigint
        REFERENCES deployment_history (id) ON DELETE SET NULL,
    DROP CONSTRAINT deployment_history_action_known,
    ADD CONSTRAINT deployment_history_action_known
        CHECK (action IN ('deploy', 'rollback', 'stop', 'redeploy', 'heal', 'delete',
                          'health')),
    DROP CONSTRAINT deployment_history_status_known,
    ADD CONSTRAINT deployment_history_status_known
        CHECK (status IN ('healthy', 'failed', 'stopped', 'superseded', 'interrupted',
                          'cancelled', 'degraded', 'drifted', 'deleted'));

-- The claim's heal branch: rows the watch found drifted, an index probe while there are none.
CREATE INDEX deployments_heal_requested ON deployments (id)
    WHERE heal_requested_at IS NOT NULL;

-- The claim's "ops repo moved" branch now covers degraded and drifted rows too.
DROP INDEX deployments_rendered_sha;
CREATE INDEX deployments_rendered_sha ON deployments (ops_repo_id, rendered_sha)
    WHERE desired_status IN ('active', 'rollback')
      AND current_status IN ('healthy', 'failed', 'degraded', 'drifted');

-- Choosing another row to roll back to is a new desired state; turning healing back on asks
-- for a heal of what drifted.  Fires after deployments_before_write (name order).
CREATE FUNCTION deployments_live_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rollback_to IS DISTINCT FROM OLD.rollback_to AND NEW.rollback_to IS NOT NULL
       AND NEW.generation = OLD.generation THEN
        NEW.generation := OLD.generation + 1;
        NEW.updated_at := now();
    END IF;
    IF NEW.self_heal IS DISTINCT FROM OLD.self_heal AND NEW.current_status = 'drifted'
       AND NEW.heal_requested_at IS NULL THEN
        NEW.heal_requested_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER deployments_live_state
    BEFORE UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_live_state();

-- Deleting a row that still owns objects would orphan them on the cluster.
CREATE FUNCTION deployments_before_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owned bigint;
BEGIN
    SELECT count(*) INTO owned FROM deployment_objects WHERE deployment_id = OLD.id;
    IF owned > 0 THEN
        RAISE EXCEPTION 'deployment %/% still owns % object(s) on the cluster',
            OLD.project, OLD.environment, owned
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = format('delete them first: UPDATE deployments SET desired_status = '
                                '''deleted'' WHERE project = %L AND environment = %L '
                                '(or reconciler delete %s %s), then delete the row once '
                                'current_status is ''deleted''',
                                OLD.project, OLD.environment, OLD.project, OLD.environment);
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER deployments_before_delete
    BEFORE DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_before_delete();

-- 0005's NOTIFY, plus: a heal asked for ("wake:<id>": look at the database now).
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
              AND NEW.attempts = 0)
          OR (OLD.heal_requested_at IS NULL AND NEW.heal_requested_at IS NOT NULL) THEN
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
       d.paused,
       (SELECT count(*) FROM deployment_objects o WHERE o.deployment_id = d.id) AS objects,
       (SELECT count(*) FROM deployment_objects o
        WHERE o.deployment_id = d.id AND o.health IN ('degraded', 'missing')) AS unhealthy
FROM deployments d
LEFT JOIN LATERAL (
    SELECT action, status, finished_at
    FROM deployment_history
    WHERE deployment_id = d.id
    ORDER BY id DESC
    LIMIT 1
) h ON true
ORDER BY d.project, d.environment;

-- Pipelines may choose the row to roll back to, and the deployment's heal and prune rules.
GRANT INSERT (self_heal, prune_all_allowed, rollback_to) ON deployments TO reconciler_pipeline;
GRANT UPDATE (self_heal, prune_all_allowed, rollback_to) ON deployments TO reconciler_pipeline;
GRANT SELECT (self_heal, prune_all_allowed, rollback_to) ON deployments TO reconciler_pipeline;
"""

DOWNGRADE = r"""
REVOKE INSERT (self_heal, prune_all_allowed, rollback_to),
       UPDATE (self_heal, prune_all_allowed, rollback_to),
       SELECT (self_heal, prune_all_allowed, rollback_to)
    ON deployments FROM reconciler_pipeline;
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
GRANT SELECT ON deployment_status TO reconciler_pipeline, reconciler_reader, reconciler_daemon;
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
DROP TRIGGER deployments_before_delete ON deployments;
DROP FUNCTION deployments_before_delete();
DROP TRIGGER deployments_live_state ON deployments;
DROP FUNCTION deployments_live_state();
DROP INDEX deployments_rendered_sha;
CREATE INDEX deployments_rendered_sha ON deployments (ops_repo_id, rendered_sha)
    WHERE desired_status IN ('active', 'rollback') AND current_status IN ('healthy', 'failed');
DROP INDEX deployments_heal_requested;
DELETE FROM deployment_history
WHERE action IN ('heal', 'delete', 'health') OR status IN ('degraded', 'drifted', 'deleted');
ALTER TABLE deployment_history
    DROP COLUMN rolled_back_to,
    DROP CONSTRAINT deployment_history_status_known,
    ADD CONSTRAINT deployment_history_status_known
        CHECK (status IN ('healthy', 'failed', 'stopped', 'superseded', 'interrupted',
                          'cancelled')),
    DROP CONSTRAINT deployment_history_action_known,
    ADD CONSTRAINT deployment_history_action_known
        CHECK (action IN ('deploy', 'rollback', 'stop', 'redeploy'));
UPDATE deployments SET current_status = 'healthy' WHERE current_status IN ('degraded', 'drifted');
UPDATE deployments SET current_status = 'stopped' WHERE current_status = 'deleted';
UPDATE deployments SET desired_status = 'stopped' WHERE desired_status = 'deleted';
UPDATE deployments SET attempt_action = 'deploy' WHERE attempt_action IN ('heal', 'delete');
ALTER TABLE deployments
    DROP CONSTRAINT deployments_attempt_action_known,
    ADD CONSTRAINT deployments_attempt_action_known
        CHECK (attempt_action IS NULL
               OR attempt_action IN ('deploy', 'rollback', 'stop', 'redeploy')),
    DROP CONSTRAINT deployments_current_status_known,
    ADD CONSTRAINT deployments_current_status_known
        CHECK (current_status IN ('pending', 'syncing', 'healthy', 'failed', 'stopped')),
    DROP CONSTRAINT deployments_desired_status_known,
    ADD CONSTRAINT deployments_desired_status_known
        CHECK (desired_status IN ('active', 'stopped', 'rollback')),
    DROP COLUMN rollback_to,
    DROP COLUMN heal_requested_at,
    DROP COLUMN prune_all_allowed,
    DROP COLUMN self_heal;
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
