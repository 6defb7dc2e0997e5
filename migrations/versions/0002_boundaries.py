"""Boundaries: a row reaches only its own namespace, and no input can hurt the daemon.

Bounds on values_override, ops repo policies (ops_repo_policies), namespaces that cannot collide,
least-privilege roles, history that survives a deployment's deletion, and a retried rollback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

from reconciler.sqlscript import split_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- ============================================================== values_override bounds

-- How deeply a JSON text nests: the most brackets open at once outside strings.  Iterative (a
-- running sum), so no value, however deep, costs stack; PostgreSQL's own JSON parser refuses
-- what its stack cannot hold before a value ever gets here.
CREATE FUNCTION json_nesting_depth(json_text text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(max(depth), 0)::integer
    FROM (
        SELECT sum(CASE WHEN b IN ('[', '{') THEN 1 ELSE -1 END) OVER (ORDER BY i) AS depth
        FROM regexp_split_to_table(
                 regexp_replace(regexp_replace(json_text, '"(\\.|[^"\\])*"', '', 'g'),
                                '[^][{}]', '', 'g'),
                 '') WITH ORDINALITY AS t(b, i)
        WHERE b <> ''
    ) running
$$;

-- The daemon decodes values_override in Python, whose decoder recurses: keep it shallow and
-- small.  Checked only when the value changes, so the daemon's own updates cost nothing.
CREATE FUNCTION deployments_check_values(value jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    max_bytes CONSTANT integer := 65536;
    max_depth CONSTANT integer := 32;
    as_text CONSTANT text := value::text;
    depth integer;
BEGIN
    IF octet_length(as_text) > max_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'deployments',
            COLUMN = 'values_override', CONSTRAINT = 'deployments_values_override_bounded',
            MESSAGE = 'values_override is ' || octet_length(as_text) || ' bytes as JSON text; '
                      || 'the limit is ' || max_bytes;
    END IF;
    depth := json_nesting_depth(as_text);
    IF depth > max_depth THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'deployments',
            COLUMN = 'values_override', CONSTRAINT = 'deployments_values_override_bounded',
            MESSAGE = 'values_override is nested ' || depth || ' levels deep; the limit is '
                      || max_depth;
    END IF;
END
$$;


-- ============================================================== ops repo policies

-- Whether a namespace is one of the patterns (an exact name, or a prefix ending in '*').
CREATE FUNCTION namespace_matches(patterns text[], namespace text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM unnest(patterns) AS p
        WHERE p = namespace OR (right(p, 1) = '*' AND starts_with(namespace, left(p, -1)))
    )
$$;

CREATE FUNCTION namespace_patterns_valid(patterns text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(bool_and(p ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
                             OR p ~ '^[a-z0-9-]{0,62}\*$'), true)
    FROM unnest(patterns) AS p
$$;

-- Set by whoever administers the database; no row means the defaults below.
CREATE TABLE ops_repo_policies (
    ops_repo_id    bigint PRIMARY KEY REFERENCES ops_repos (id) ON DELETE CASCADE,
    namespaces     text[] NOT NULL DEFAULT '{}',
    cluster_kinds  text[] NOT NULL DEFAULT '{}',
    -- reconciler.model.DEFAULT_DENIED_KINDS (a test holds the two equal).
    denied_kinds   text[] NOT NULL DEFAULT ARRAY[
        'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration',
        'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
        'ClusterRole', 'ClusterRoleBinding'],
    -- The ServiceAccount (namespace/name) whose rights the daemon applies this repo's objects
    -- with, through impersonation; NULL: the daemon's own.
    service_account text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ops_repo_policies_service_account_is_namespace_slash_name CHECK (
        service_account ~ ('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?'
                           || '/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')),
    CONSTRAINT ops_repo_policies_namespaces_are_patterns
        CHECK (array_position(namespaces, NULL) IS NULL AND namespace_patterns_valid(namespaces))
);


-- ============================================================== the boundaries trigger

-- ops_repo_id must name an ops repo; a writer's `(SELECT id ... WHERE name = 'typo')` gives NULL.
CREATE FUNCTION deployments_check_ops_repo(repo_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    known text;
BEGIN
    IF repo_id IS NOT NULL AND EXISTS (SELECT 1 FROM ops_repos r WHERE r.id = repo_id) THEN
        RETURN;
    END IF;
    known := (SELECT coalesce(string_agg(name, ', ' ORDER BY name), 'none') FROM ops_repos);
    IF repo_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'not_null_violation', TABLE = 'deployments',
            COLUMN = 'ops_repo_id', CONSTRAINT = 'deployments_ops_repo_id_fkey',
            MESSAGE = 'ops_repo_id is NULL: no ops repo matched (registered ops repos: '
                      || known || ')';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', TABLE = 'deployments',
        COLUMN = 'ops_repo_id', CONSTRAINT = 'deployments_ops_repo_id_fkey',
        MESSAGE = 'ops_repo_id names no ops repo',
        DETAIL = 'no ops repo has id ' || repo_id || ' (registered ops repos: ' || known || ')';
END
$$;

-- A deployment's namespace is its default <project>-<environment>, or one its ops repo's
-- policy allows.  A default namespace is its deployment's alone; a namespace the policies list
-- may be shared by the deployments of the repos listing it.
CREATE FUNCTION deployments_check_namespace(d deployments) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    default_namespace CONSTANT text := d.project || '-' || d.environment;
    listed text[] := coalesce((SELECT p.namespaces FROM ops_repo_policies p
                               WHERE p.ops_repo_id = d.ops_repo_id), '{}');
    shared CONSTANT boolean := namespace_matches(listed, d.namespace);
    other record;
BEGIN
    IF d.namespace <> default_namespace AND NOT shared THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'deployments',
            COLUMN = 'namespace', CONSTRAINT = 'deployments_namespace_allowed',
            MESSAGE = 'namespace ' || quote_literal(d.namespace)
                      || ' is not allowed for ops repo '
                      || quote_literal((SELECT name FROM ops_repos WHERE id = d.ops_repo_id))
                      || ' (allowed: the default ' || default_namespace
                      || CASE WHEN listed = '{}' THEN ''
                              ELSE ', and: ' || array_to_string(listed, ', ') END || ')';
    END IF;
    -- Writers of one namespace take turns, so two concurrent inserts cannot both pass.
    PERFORM pg_advisory_xact_lock(hashtext('reconciler namespace'), hashtext(d.namespace));
    SELECT o.project, o.environment INTO other
    FROM deployments o
    LEFT JOIN ops_repo_policies p ON p.ops_repo_id = o.ops_repo_id
    WHERE o.namespace = d.namespace
      AND o.id <> d.id
      AND (o.project, o.environment) IS DISTINCT FROM (d.project, d.environment)
      AND NOT (shared AND namespace_matches(coalesce(p.namespaces, '{}'), d.namespace))
    ORDER BY o.project, o.environment
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'deployments',
            COLUMN = 'namespace', CONSTRAINT = 'deployments_namespace_not_taken',
            MESSAGE = 'namespace ' || quote_literal(d.namespace)
                      || ' is already used by deployment ' || other.project || '/'
                      || other.environment || '; set namespace explicitly';
    END IF;
END
$$;

-- The collision check looks deployments up by namespace.
CREATE INDEX deployments_namespace ON deployments (namespace);

-- Runs after deployments_before_write (triggers fire in name order), so it sees the defaulted
-- namespace and the generation that trigger decided.
CREATE FUNCTION deployments_within_boundaries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.ops_repo_id IS DISTINCT FROM OLD.ops_repo_id THEN
        PERFORM deployments_check_ops_repo(NEW.ops_repo_id);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.values_override IS DISTINCT FROM OLD.values_override THEN
        PERFORM deployments_check_values(NEW.values_override);
    END IF;
    IF TG_OP = 'INSERT' OR (NEW.namespace, NEW.ops_repo_id, NEW.project, NEW.environment)
                           IS DISTINCT FROM
                           (OLD.namespace, OLD.ops_repo_id, OLD.project, OLD.environment) THEN
        PERFORM deployments_check_namespace(NEW);
    END IF;
    -- A writer asking again for a rollback that failed (the row otherwise unchanged, so not
    -- the daemon's own bookkeeping) gets a new generation: the rollback is tried again.
    IF TG_OP = 'UPDATE' AND NEW.desired_status = 'rollback' AND OLD.desired_status = 'rollback'
       AND OLD.current_status = 'failed' AND NEW IS NOT DISTINCT FROM OLD THEN
        NEW.generation := OLD.generation + 1;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER deployments_within_boundaries
    BEFORE INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION deployments_within_boundaries();


-- ============================================================== history outlives deployments

ALTER TABLE deployment_history ADD COLUMN project text, ADD COLUMN environment text;

UPDATE deployment_history h
SET project = d.project, environment = d.environment
FROM deployments d
WHERE d.id = h.deployment_id;

ALTER TABLE deployment_history
    ALTER COLUMN project SET NOT NULL,
    ALTER COLUMN environment SET NOT NULL,
    ALTER COLUMN deployment_id DROP NOT NULL,
    DROP CONSTRAINT deployment_history_deployment_id_fkey,
    ADD CONSTRAINT deployment_history_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES deployments (id) ON DELETE SET NULL;

CREATE INDEX deployment_history_by_name ON deployment_history (project, environment, id DESC);
CREATE INDEX deployment_history_by_finished_at ON deployment_history (finished_at);

-- Writers of history name the deployment by id; its names are copied so they outlive it.
CREATE FUNCTION deployment_history_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deployment_id IS NOT NULL THEN
        SELECT d.project, d.environment INTO NEW.project, NEW.environment
        FROM deployments d WHERE d.id = NEW.deployment_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER deployment_history_before_insert
    BEFORE INSERT ON deployment_history
    FOR EACH ROW EXECUTE FUNCTION deployment_history_before_insert();


-- ============================================================== roles
--
-- Roles belong to the server, grants to this database: create the roles once (another
-- database on the server may have created them already), grant here every time.

DO $$
BEGIN
    CREATE ROLE reconciler_pipeline NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE reconciler_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE reconciler_daemon NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Pipelines write desired state and nothing else.  The SELECTs are what the README's upsert,
-- the UPDATE ... WHERE project = ... and the boundaries trigger read.
GRANT INSERT (project, environment, namespace, ops_repo_id, image_ref, values_override,
              desired_status) ON deployments TO reconciler_pipeline;
GRANT UPDATE (namespace, ops_repo_id, image_ref, values_override, desired_status)
    ON deployments TO reconciler_pipeline;
GRANT SELECT (id, project, environment, namespace, ops_repo_id, image_ref, values_override,
              desired_status) ON deployments TO reconciler_pipeline;
GRANT SELECT (id, name) ON ops_repos TO reconciler_pipeline;
GRANT SELECT ON ops_repo_policies, deployment_status TO reconciler_pipeline;

-- Readers read everything but where the ops repos are (repo_url may carry credentials).
GRANT SELECT ON deployments, deployment_history, deployment_status, ops_repo_policies
    TO reconciler_reader;
GRANT SELECT (id, name, branch, path, sync_interval_s, last_synced_at, last_sha, last_error,
              created_at, updated_at) ON ops_repos TO reconciler_reader;

-- The daemon (and the CLI on its credentials) reads policies but never sets them.
GRANT SELECT, INSERT, UPDATE ON deployments, ops_repos TO reconciler_daemon;
GRANT SELECT, INSERT, DELETE ON deployment_history TO reconciler_daemon;
GRANT SELECT ON ops_repo_policies, deployment_status TO reconciler_daemon;
"""

DOWNGRADE = r"""
-- The roles stay: other databases on the server may use them.  Revoking a table's privileges
-- revokes its column privileges too.
REVOKE ALL ON deployments, deployment_history, ops_repos, ops_repo_policies, deployment_status
    FROM reconciler_pipeline, reconciler_reader, reconciler_daemon;

DROP TRIGGER deployment_history_before_insert ON deployment_history;
DROP FUNCTION deployment_history_before_insert();
-- 0001's history cannot hold rows whose deployment is gone.
DELETE FROM deployment_history WHERE deployment_id IS NULL;
DROP INDEX deployment_history_by_finished_at;
DROP INDEX deployment_history_by_name;
ALTER TABLE deployment_history
    DROP CONSTRAINT deployment_history_deployment_id_fkey,
    ADD CONSTRAINT deployment_history_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES deployments (id) ON DELETE CASCADE,
    ALTER COLUMN deployment_id SET NOT NULL,
    DROP COLUMN project,
    DROP COLUMN environment;

DROP TRIGGER deployments_within_boundaries ON deployments;
DROP FUNCTION deployments_within_boundaries();
DROP INDEX deployments_namespace;
DROP FUNCTION deployments_check_namespace(deployments);
DROP FUNCTION deployments_check_ops_repo(bigint);
DROP TABLE ops_repo_policies;
DROP FUNCTION namespace_patterns_valid(text[]);
DROP FUNCTION namespace_matches(text[], text);
DROP FUNCTION deployments_check_values(jsonb);
DROP FUNCTION json_nesting_depth(text);
"""


def upgrade() -> None:
    # exec_driver_sql: the SQL goes to the server as written (no ":name" bind parsing).
    for statement in split_statements(UPGRADE):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in split_statements(DOWNGRADE):
        op.get_bind().exec_driver_sql(statement)
