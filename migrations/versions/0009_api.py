"""The HTTP API's tokens, and an audit of every desired-state change, whoever makes it.

- ``api_tokens``: bearer tokens of the daemon's ``/api/v1``.  Only the SHA-256 (hex) of a
  token is stored; ``scope`` is ``deploy:read`` < ``deploy:promote`` < ``admin`` (each implies
  the lower); ``project`` NULL means every project.  Revoked tokens stay, so their names stay
  taken and the audit's actors stay meaningful.
- ``deployment_audit``: one row per change of a deployment's desired state (``image_ref,
  values_override, desired_status, namespace, ops_repo_id, paused, self_heal,
  prune_all_allowed, rollback_to``, a new generation, and the day-two requests: redeploy,
  cancel, retry), inserted, updated or deleted, written by triggers in the writer's own
  transaction.  The triggers' WHEN clause leaves the daemon's bookkeeping (``current_*``,
  leases, attempts) free of any cost.
- Who: ``via`` is ``api`` / ``cli`` / ``daemon`` when the transaction claimed it with
  ``set_config('reconciler.via', ..., true)`` (and ``reconciler.actor``: the token name, the
  OS user, the daemon id) *and* its session user is a member of ``reconciler_daemon``;
  otherwise ``sql``, with any claim kept in ``claimed_via`` / ``claimed_actor`` for everyone to
  see.  ``db_user`` (``session_user``, which ``SET ROLE`` does not change) and
  ``application_name`` are always recorded.
- The trigger function is SECURITY DEFINER with a fixed search_path (the schema, then
  ``pg_temp`` last, so a temporary table cannot stand in for the audit), so writers need no
  privilege on the audit; nobody but the owner writes or deletes its rows.  Readers and the
  daemon may read it; the daemon (and the CLI on its credentials) manages tokens, and may now
  delete ops repos (the admin API unregisters them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    token_hash    text NOT NULL,
    scope         text NOT NULL,
    project       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CONSTRAINT api_tokens_name_key UNIQUE (name),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_name_is_slug
        CHECK (name ~ '^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$'),
    CONSTRAINT api_tokens_token_hash_is_sha256 CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT api_tokens_scope_known
        CHECK (scope IN ('deploy:read', 'deploy:promote', 'admin')),
    CONSTRAINT api_tokens_project_is_dns_label
        CHECK (project ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);

CREATE TABLE deployment_audit (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- No foreign key: the audit outlives the deployment.
    deployment_id     bigint NOT NULL,
    project           text NOT NULL,
    environment       text NOT NULL,
    operation         text NOT NULL,
    changes           jsonb NOT NULL,
    generation        bigint NOT NULL,
    via               text NOT NULL,
    actor             text,
    claimed_via       text,
    claimed_actor     text,
    db_user           text NOT NULL,
    application_name  text NOT NULL DEFAULT '',
    CONSTRAINT deployment_audit_operation_known
        CHECK (operation IN ('insert', 'update', 'delete')),
    CONSTRAINT deployment_audit_via_known CHECK (via IN ('api', 'cli', 'sql', 'daemon'))
);

CREATE INDEX deployment_audit_by_name ON deployment_audit (project, environment, id DESC);

-- One audit row for the change this trigger fires on (see the module docstring).  Columns are
-- compared as jsonb, so a value written again unchanged is not a change.
CREATE FUNCTION deployments_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    desired CONSTANT text[] := ARRAY['image_ref', 'values_override', 'desired_status',
                                     'namespace', 'ops_repo_id', 'paused', 'self_heal',
                                     'prune_all_allowed', 'rollback_to'];
    old_row jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    row_now jsonb := CASE WHEN TG_OP = 'DELETE' THEN old_row ELSE new_row END;
    changes jsonb := '{}'::jsonb;
    column_name text;
    claimed_via text := nullif(current_setting('reconciler.via', true), '');
    claimed_actor text := nullif(current_setting('reconciler.actor', true), '');
    via text := 'sql';
    actor text;
BEGIN
    -- An absent row (before an insert, after a delete) reads as nulls: an insert lists the
    -- columns it set, a delete the columns it took away.
    FOREACH column_name IN ARRAY desired LOOP
        IF coalesce(old_row -> column_name, 'null'::jsonb)
           IS DISTINCT FROM coalesce(new_row -> column_name, 'null'::jsonb) THEN
            changes := changes || jsonb_build_object(column_name, jsonb_build_object(
                'from', old_row -> column_name, 'to', new_row -> column_name));
        END IF;
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        -- The day-two requests, when asked for (the daemon clearing them is not a change).
        IF NEW.redeploy_requested_at IS NOT NULL
           AND NEW.redeploy_requested_at IS DISTINCT FROM OLD.redeploy_requested_at THEN
            changes := changes || jsonb_build_object('redeploy_restart', jsonb_build_object(
                'from', old_row -> 'redeploy_restart', 'to', new_row -> 'redeploy_restart'));
            changes := changes || jsonb_build_object('redeploy_requested_at',
                jsonb_build_object('from', old_row -> 'redeploy_requested_at',
                                   'to', new_row -> 'redeploy_requested_at'));
        END IF;
        IF NEW.cancel_requested_generation IS NOT NULL
           AND NEW.cancel_requested_generation IS DISTINCT FROM OLD.cancel_requested_generation
        THEN
            changes := changes || jsonb_build_object('cancel_requested_generation',
                jsonb_build_object('from', old_row -> 'cancel_requested_generation',
                                   'to', new_row -> 'cancel_requested_generation'));
        END IF;
        IF OLD.next_attempt_at IS NULL AND NEW.next_attempt_at IS NOT NULL
           AND NEW.attempts = 0 THEN
            changes := changes || jsonb_build_object(
                'attempts', jsonb_build_object('from', old_row -> 'attempts', 'to', 0),
                'next_attempt_at', jsonb_build_object(
                    'from', NULL, 'to', new_row -> 'next_attempt_at'));
        END IF;
    END IF;
    -- Only the daemon's role (the daemon, the API in it, the CLI on its credentials) may say
    -- who it is; any other session's claim is recorded as a claim, never believed.
    IF claimed_via IN ('api', 'cli', 'daemon')
       AND pg_has_role(session_user, 'reconciler_daemon', 'MEMBER') THEN
        via := claimed_via;
        actor := claimed_actor;
        claimed_via := NULL;
        claimed_actor := NULL;
    END IF;
    INSERT INTO deployment_audit (deployment_id, project, environment, operation, changes,
                                  generation, via, actor, claimed_via, claimed_actor, db_user,
                                  application_name)
    VALUES ((row_now ->> 'id')::bigint, row_now ->> 'project', row_now ->> 'environment',
            lower(TG_OP), changes, (row_now ->> 'generation')::bigint, via, actor,
            claimed_via, claimed_actor, session_user,
            coalesce(current_setting('application_name', true), ''));
    RETURN NULL;
END
$$;

-- A fixed search_path: this schema first, pg_temp last (a temporary table named like the
-- audit must not receive its rows).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION deployments_audit() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END
$$;

-- Separate triggers: a WHEN clause may read OLD only where there is one.  The update's WHEN
-- is evaluated without calling the function, so the daemon's frequent writes of its own
-- columns cost a comparison.
CREATE TRIGGER deployments_audit_update
    AFTER UPDATE ON deployments
    FOR EACH ROW
    WHEN ((OLD.image_ref, OLD.values_override, OLD.desired_status, OLD.namespace,
           OLD.ops_repo_id, OLD.paused, OLD.self_heal, OLD.prune_all_allowed, OLD.rollback_to,
           OLD.generation)
          IS DISTINCT FROM
          (NEW.image_ref, NEW.values_override, NEW.desired_status, NEW.namespace,
           NEW.ops_repo_id, NEW.paused, NEW.self_heal, NEW.prune_all_allowed, NEW.rollback_to,
           NEW.generation)
          OR (NEW.cancel_requested_generation IS NOT NULL
              AND NEW.cancel_requested_generation IS DISTINCT FROM
                  OLD.cancel_requested_generation)
          OR (OLD.next_attempt_at IS NULL AND NEW.next_attempt_at IS NOT NULL
              AND NEW.attempts = 0))
    EXECUTE FUNCTION deployments_audit();

CREATE TRIGGER deployments_audit_insert_delete
    AFTER INSERT OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_audit();

REVOKE ALL ON api_tokens, deployment_audit FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON api_tokens TO reconciler_daemon;
GRANT SELECT ON deployment_audit TO reconciler_reader, reconciler_daemon;
-- The admin API unregisters ops repos (the foreign key of deployments still refuses a used one).
GRANT DELETE ON ops_repos TO reconciler_daemon;
"""

DOWNGRADE = r"""
REVOKE DELETE ON ops_repos FROM reconciler_daemon;
DROP TRIGGER deployments_audit_insert_delete ON deployments;
DROP TRIGGER deployments_audit_update ON deployments;
DROP FUNCTION deployments_audit();
DROP TABLE deployment_audit;
DROP TABLE api_tokens;
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
