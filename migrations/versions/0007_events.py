"""Events: every status transition published on ``NOTIFY reconciler_events``; the status view
shows what a pipeline waits on.

- ``deployments_events`` (AFTER UPDATE): when ``current_status`` changes, or when
  ``observed_generation`` moves while the row stays ``failed`` (a retry that failed again, a
  new desired state that failed too), one ``pg_notify('reconciler_events', <json>)`` in the
  writer's transaction: published once, at its COMMIT, whichever daemon (or admin) wrote it.
  ``syncing`` -> ``syncing`` (an attempt superseded by the next) is not an event.
- The payload is a JSON object: ``id, project, environment, generation, observed_generation,
  from, to, desired, image_ref, current_image_ref, attempts, next_attempt_at, gave_up, message,
  message_truncated, message_length, at``.  NOTIFY refuses payloads of 8000 bytes or more, and a
  refused NOTIFY would fail the daemon's write: image refs are cut to 1,000 bytes of JSON and
  the message to what is left of 7,900 (``message_truncated`` says so; ``message_length`` is
  the whole message's length in characters; ``status_message`` has all of it).
- ``deployment_status`` gains, last: ``generation, observed_generation, attempts,
  next_attempt_at, gave_up`` (failed, the generation observed, no retry scheduled: what
  ``deployments_parked`` lists).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_VIEW_0006 = r"""
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
"""

_VIEW_FROM = r"""
FROM deployments d
LEFT JOIN LATERAL (
    SELECT action, status, finished_at
    FROM deployment_history
    WHERE deployment_id = d.id
    ORDER BY id DESC
    LIMIT 1
) h ON true
ORDER BY d.project, d.environment;
"""

UPGRADE = (
    r"""
-- A prefix of value whose JSON encoding (quotes included) fits in max_bytes.  Escapes make
-- a character 1 to 6 bytes of JSON, so each round keeps the share of characters that would
-- fit at the average width so far (and at least one fewer): a few rounds, even for a value
-- of control characters.
CREATE FUNCTION reconciler_json_cut(value text, max_bytes integer)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    cut text := coalesce(value, '');
    encoded integer;
BEGIN
    LOOP
        encoded := octet_length(to_json(cut)::text);
        EXIT WHEN encoded <= max_bytes OR cut = '';
        cut := left(cut, least(length(cut) - 1,
                               (length(cut)::bigint * greatest(max_bytes - 2, 0)
                                / encoded)::integer));
    END LOOP;
    RETURN cut;
END
$$;

-- One event per status transition, in the writer's transaction (see the module docstring).
CREATE FUNCTION deployments_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event jsonb;
    message text;
    budget integer;
BEGIN
    IF NEW.current_status IS NOT DISTINCT FROM OLD.current_status
       AND NOT (NEW.current_status = 'failed'
                AND NEW.observed_generation IS DISTINCT FROM OLD.observed_generation) THEN
        RETURN NULL;
    END IF;
    event := jsonb_build_object(
        'id', NEW.id,
        'project', NEW.project,
        'environment', NEW.environment,
        'generation', NEW.generation,
        'observed_generation', NEW.observed_generation,
        'from', OLD.current_status,
        'to', NEW.current_status,
        'desired', NEW.desired_status,
        'image_ref', reconciler_json_cut(NEW.image_ref, 1000),
        'current_image_ref', reconciler_json_cut(NEW.current_image_ref, 1000),
        'attempts', NEW.attempts,
        'next_attempt_at', NEW.next_attempt_at,
        'gave_up', NEW.current_status = 'failed' AND NEW.next_attempt_at IS NULL
                   AND NEW.observed_generation = NEW.generation,
        'message', '',
        'message_truncated', false,
        'message_length', length(NEW.status_message),
        'at', clock_timestamp());
    -- What the message may take: 7,900 bytes in all, less the rest ('""' is counted in both).
    budget := 7900 - octet_length(event::text) + 2;
    message := reconciler_json_cut(NEW.status_message, budget);
    event := event || jsonb_build_object(
        'message', message,
        'message_truncated', message IS DISTINCT FROM coalesce(NEW.status_message, ''));
    PERFORM pg_notify('reconciler_events', event::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER deployments_events
    AFTER UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_events();

-- New columns go last, so the view keeps its grants and its columns' order.
CREATE OR REPLACE VIEW deployment_status AS
"""
    + _VIEW_0006.rstrip()
    + r""",
       d.generation,
       d.observed_generation,
       d.attempts,
       d.next_attempt_at,
       (d.current_status = 'failed' AND d.next_attempt_at IS NULL
        AND d.observed_generation = d.generation) AS gave_up
"""
    + _VIEW_FROM
)

DOWNGRADE = (
    r"""
DROP VIEW deployment_status;
CREATE VIEW deployment_status AS
"""
    + _VIEW_0006
    + _VIEW_FROM
    + r"""
GRANT SELECT ON deployment_status TO reconciler_pipeline, reconciler_reader, reconciler_daemon;
DROP TRIGGER deployments_events ON deployments;
DROP FUNCTION deployments_events();
DROP FUNCTION reconciler_json_cut(text, integer);
"""
)


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
