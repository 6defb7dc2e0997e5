-- Every statement reconciler runs, one named block each.
--
-- A block is `-- name: <name>`, then comment lines saying what it does and what must hold for
-- it to apply (its precondition), then the statement.  Binds are `:name`; reconciler/db/queries.py
-- loads the blocks as SQLAlchemy text.  Parameters reach the server untyped, so SQL casts them
-- where the context does not say their type (arrays, jsonb, timestamps).  jsonb parameters are
-- JSON text.  The schema itself lives in migrations/ only; a test PREPAREs every block against
-- the migrated schema, so this file and the schema cannot drift apart.
--
-- Keep bind names out of comments: SQLAlchemy would read them as binds.


-- ============================================================== connections

-- name: ping
-- Check the server answers (Store.connect, the listener's liveness check).  Always applies.
SELECT 1;


-- ============================================================== ops repos

-- name: add_ops_repo
-- Register an ops repo.  The name must be new; CHECK constraints vet name, URL and path.
INSERT INTO ops_repos (name, repo_url, branch, path, sync_interval_s)
VALUES (:name, :repo_url, :branch, :path, :sync_interval_s)
RETURNING id, name, repo_url, branch, path, sync_interval_s,
          last_synced_at, last_sha, last_error;

-- name: list_ops_repos
-- Every ops repo, by name.  Always applies.
SELECT id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error
FROM ops_repos
ORDER BY name;

-- name: get_ops_repo
-- One ops repo by name; no row when there is none.
SELECT id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error
FROM ops_repos
WHERE name = :name;

-- name: ops_repos_by_id
-- The ops repos among the given ids (unknown ids are left out).
SELECT id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error
FROM ops_repos
WHERE id = ANY(CAST(:ids AS bigint[]));

-- name: ops_repos_due_for_sync
-- Repos some deployment uses whose last sync is older than their interval (or never ran).
SELECT r.id, r.name, r.repo_url, r.branch, r.path, r.sync_interval_s,
       r.last_synced_at, r.last_sha, r.last_error
FROM ops_repos r
WHERE (r.last_synced_at IS NULL
       OR r.last_synced_at + make_interval(secs => r.sync_interval_s) <= now())
  AND EXISTS (SELECT 1 FROM deployments d WHERE d.ops_repo_id = r.id)
ORDER BY r.id;

-- name: record_repo_sync
-- After a sync attempt: a success (sha given) records the sha; a failure (sha NULL) keeps the
-- last good one.  Either way the error is recorded as given (NULL clears it).
UPDATE ops_repos
SET last_synced_at = now(),
    last_error = :error,
    last_sha = COALESCE(:sha, last_sha)
WHERE id = :repo_id;


-- name: notify_repo_sync
-- Ask the daemon to sync these ops repos now (`reconciler ops-repo sync`): one NOTIFY each, the
-- payload the daemon reads as "sync this repo".  Unknown ids are left out; the result has one
-- row per notified repo.
SELECT r.id, pg_notify(:channel, 'repo:' || r.id::text)
FROM ops_repos r
WHERE r.id = ANY(CAST(:ids AS bigint[]))
ORDER BY r.id;

-- ============================================================== ops repo policies

-- name: policy_for
-- The policy of one ops repo; no row when it has none (the table's defaults then apply).
SELECT namespaces, cluster_kinds, denied_kinds, service_account
FROM ops_repo_policies
WHERE ops_repo_id = :ops_repo_id;

-- name: set_policy
-- Set (or replace) the policy of one ops repo; whoever administers the database runs this.
-- The ops repo must exist; CHECK constraints vet the namespaces.
INSERT INTO ops_repo_policies (ops_repo_id, namespaces, cluster_kinds, denied_kinds,
                               service_account)
VALUES (:ops_repo_id, CAST(:namespaces AS text[]), CAST(:cluster_kinds AS text[]),
        CAST(:denied_kinds AS text[]), CAST(:service_account AS text))
ON CONFLICT (ops_repo_id) DO UPDATE
SET namespaces = EXCLUDED.namespaces,
    cluster_kinds = EXCLUDED.cluster_kinds,
    denied_kinds = EXCLUDED.denied_kinds,
    service_account = EXCLUDED.service_account,
    updated_at = now()
RETURNING namespaces, cluster_kinds, denied_kinds, service_account;


-- ============================================================== writers' side

-- name: upsert_deployment
-- What a pipeline does: insert the deployment, or update the desired state of the existing
-- (project, environment).  An empty or NULL namespace leaves an existing one alone (the trigger
-- defaults it on insert); the trigger bumps generation when the desired state changed.
INSERT INTO deployments (project, environment, ops_repo_id, image_ref, namespace,
                         values_override, desired_status)
VALUES (:project, :environment, :ops_repo_id, :image_ref, :namespace,
        CAST(:values_override AS jsonb), :desired_status)
ON CONFLICT ON CONSTRAINT deployments_project_environment_key DO UPDATE
SET ops_repo_id = EXCLUDED.ops_repo_id,
    image_ref = EXCLUDED.image_ref,
    values_override = EXCLUDED.values_override,
    desired_status = EXCLUDED.desired_status,
    namespace = CASE WHEN NULLIF(CAST(:namespace AS text), '') IS NULL
                     THEN deployments.namespace ELSE EXCLUDED.namespace END
RETURNING id, project, environment, namespace, ops_repo_id, image_ref, values_override,
          desired_status, current_status, current_image_ref, current_sha, current_values,
          deployed_at, status_message, generation, observed_generation, claimed_by,
          lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
          attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
          rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
          redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to;

-- name: set_desired
-- Change the desired-state columns flagged set_*, leaving the others as they are; no row when
-- the deployment does not exist.  A NULL namespace lets the trigger default it again.
UPDATE deployments
SET image_ref = CASE WHEN :set_image_ref THEN CAST(:image_ref AS text) ELSE image_ref END,
    desired_status = CASE WHEN :set_desired_status
                          THEN CAST(:desired_status AS text) ELSE desired_status END,
    values_override = CASE WHEN :set_values_override
                           THEN CAST(:values_override AS jsonb) ELSE values_override END,
    namespace = CASE WHEN :set_namespace THEN CAST(:namespace AS text) ELSE namespace END,
    ops_repo_id = CASE WHEN :set_ops_repo_id
                       THEN CAST(:ops_repo_id AS bigint) ELSE ops_repo_id END,
    rollback_to = CASE WHEN :set_rollback_to
                       THEN CAST(:rollback_to AS bigint) ELSE rollback_to END
WHERE project = :project AND environment = :environment
RETURNING id, project, environment, namespace, ops_repo_id, image_ref, values_override,
          desired_status, current_status, current_image_ref, current_sha, current_values,
          deployed_at, status_message, generation, observed_generation, claimed_by,
          lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
          attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
          rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
          redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to;


-- ============================================================== state transitions
--
-- A deployment row moves: needing work -> claimed (claimed_by, lease_expires_at) -> attempt
-- started (current_status 'syncing', attempt_*) -> attempt finished (current_*, claim released,
-- one history row).  Every transition after the claim names the claiming daemon in its WHERE,
-- so a daemon whose lease was taken over writes nothing.

-- name: renew_leases
-- Extend this daemon's leases.  Precondition: the row is still claimed by this daemon; returns
-- the current generation of those rows, so a long rollout learns it was superseded.
UPDATE deployments
SET lease_expires_at = now() + make_interval(secs => :lease_s)
WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :daemon_id
RETURNING id, generation;

-- name: mark_converged
-- Nothing to apply: the generation is observed, the commit recorded (the cluster holds its
-- output already) and the claim released, with no history row (no attempt ran).  A heal
-- request the claim saw (heal_seen) is done with: nothing had drifted after all.
-- Precondition: claimed by this daemon.
UPDATE deployments
SET observed_generation = :generation,
    current_sha = :sha,
    rendered_sha = COALESCE(CAST(:sha AS text), rendered_sha),
    heal_requested_at = CASE WHEN heal_requested_at <= CAST(:heal_seen AS timestamptz)
                             THEN NULL ELSE heal_requested_at END,
    claimed_by = NULL,
    lease_expires_at = NULL
WHERE id = :id AND claimed_by = :daemon_id;

-- name: recorded_status
-- The status this daemon recorded for the attempt that started at started_at; no row if none.
-- After a write whose acknowledgement was lost, this tells whether it committed.
SELECT status
FROM deployment_history
WHERE deployment_id = :deployment_id
  AND started_at = CAST(:started_at AS timestamptz)
  AND daemon = :daemon;


-- ============================================================== read models

-- name: get_deployment
-- One deployment by (project, environment); no row when there is none.
SELECT id, project, environment, namespace, ops_repo_id, image_ref, values_override,
       desired_status, current_status, current_image_ref, current_sha, current_values,
       deployed_at, status_message, generation, observed_generation, claimed_by,
       lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
       attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
       rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
       redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to
FROM deployments
WHERE project = :project AND environment = :environment;

-- name: get_deployment_by_id
-- One deployment by id; no row when there is none.
SELECT id, project, environment, namespace, ops_repo_id, image_ref, values_override,
       desired_status, current_status, current_image_ref, current_sha, current_values,
       deployed_at, status_message, generation, observed_generation, claimed_by,
       lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
       attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
       rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
       redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to
FROM deployments
WHERE id = :id;

-- name: list_deployments
-- Every deployment, by project and environment.  Always applies.
SELECT id, project, environment, namespace, ops_repo_id, image_ref, values_override,
       desired_status, current_status, current_image_ref, current_sha, current_values,
       deployed_at, status_message, generation, observed_generation, claimed_by,
       lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
       attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
       rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
       redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to
FROM deployments
ORDER BY project, environment;

-- name: last_healthy
-- The newest healthy deploy or rollback of an image other than the one given (rollback target).
SELECT id, deployment_id, generation, action, status, image_ref, sha, values_override, digest,
       message, daemon, started_at, finished_at, duration_ms, rolled_back_to
FROM deployment_history
WHERE deployment_id = :deployment_id
  AND status = 'healthy'
  AND action IN ('deploy', 'rollback', 'redeploy')
  AND image_ref <> :other_than_image
ORDER BY id DESC
LIMIT 1;

-- name: history
-- The newest attempts of one deployment, newest first, at most the limit.
SELECT id, deployment_id, generation, action, status, image_ref, sha, values_override, digest,
       message, daemon, started_at, finished_at, duration_ms, rolled_back_to
FROM deployment_history
WHERE deployment_id = :deployment_id
ORDER BY id DESC
LIMIT :limit;

-- name: status_rows
-- The deployment_status view, as humans read it; NULL filters show everything.  The statuses
-- are values of its current column, and 'paused' for the paused rows.
SELECT * FROM deployment_status
WHERE (CAST(:statuses AS text[]) IS NULL
       OR current = ANY(CAST(:statuses AS text[]))
       OR (paused AND 'paused' = ANY(CAST(:statuses AS text[]))))
  AND (CAST(:project AS text) IS NULL OR project = CAST(:project AS text))
ORDER BY project, environment;

-- name: status_row
-- One deployment's deployment_status row, for `reconciler wait`: the view (not the table), so
-- every role may wait, the pipeline's included.
SELECT desired, current, generation, observed_generation, attempts, next_attempt_at,
       gave_up, message
FROM deployment_status
WHERE project = :project AND environment = :environment;

-- name: parked_rows
-- The deployments_parked view: failed with no retry scheduled, waiting for a human.
SELECT * FROM deployments_parked;


-- ============================================================== day-two commands
--
-- What an admin runs (in psql, or through `reconciler cancel|pause|resume|retry|redeploy`).
-- Each returns the row it changed, none when its precondition does not hold; the trigger of
-- migration 0005 sends the NOTIFY that wakes the daemon.

-- name: cancel_deployment
-- Cancel the in-flight rollout: the daemon ends its wait at once and records it 'cancelled'.
-- Precondition: an attempt is open (attempt_started_at set).
UPDATE deployments
SET cancel_requested_generation = attempt_generation
WHERE project = :project AND environment = :environment AND attempt_started_at IS NOT NULL
RETURNING id, attempt_generation;

-- name: cancels_requested
-- Of this daemon's in-flight rows, those whose rollout an admin cancelled: how lease renewal
-- learns of a cancel whose NOTIFY was lost.
SELECT id
FROM deployments
WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :daemon_id
  AND cancel_requested_generation IS NOT NULL
  AND cancel_requested_generation = attempt_generation;

-- name: set_paused
-- Pause (the daemon claims nothing of the row) or resume it.  Precondition: not in that state
-- already.  Not desired state: the generation stays.
UPDATE deployments
SET paused = CAST(:paused AS boolean)
WHERE project = :project AND environment = :environment AND paused <> CAST(:paused AS boolean)
RETURNING id;

-- name: retry_deployment
-- Un-park a deployment: its failures start counting again and it is due now.  Precondition:
-- parked (failed, no retry scheduled, no newer desired state pending).
UPDATE deployments
SET attempts = 0, next_attempt_at = now()
WHERE project = :project AND environment = :environment
  AND current_status = 'failed' AND next_attempt_at IS NULL
  AND generation = observed_generation
RETURNING id;

-- name: redeploy_deployment
-- Apply again even when nothing changed, restarting the workloads' pods when restart is true;
-- the trigger makes it a new generation.  Precondition: the desired state is 'active'.
UPDATE deployments
SET redeploy_requested_at = clock_timestamp(), redeploy_restart = CAST(:restart AS boolean)
WHERE project = :project AND environment = :environment AND desired_status = 'active'
RETURNING id, generation;


-- ============================================================== the inventory

-- name: claim_objects
-- Record objects as one deployment's; an object another deployment owns keeps its owner (the
-- next statement, in the same transaction, finds those and the caller rolls back).
INSERT INTO deployment_objects (deployment_id, api_group, api_version, kind, namespace, name)
SELECT :deployment_id, w.api_group, w.api_version, w.kind, w.namespace, w.name
FROM unnest(CAST(:groups AS text[]), CAST(:versions AS text[]), CAST(:kinds AS text[]),
            CAST(:namespaces AS text[]), CAST(:names AS text[]))
     AS w(api_group, api_version, kind, namespace, name)
ON CONFLICT (api_group, kind, namespace, name) DO UPDATE
SET api_version = EXCLUDED.api_version, updated_at = now()
WHERE deployment_objects.deployment_id = EXCLUDED.deployment_id;

-- name: foreign_owners
-- Of the given objects, those another deployment owns, with that deployment's name.  A
-- statement of its own (READ COMMITTED): it sees an owner that committed while the insert
-- above waited on it.
SELECT o.api_version, o.kind, o.namespace, o.name, d.project, d.environment
FROM deployment_objects o
JOIN deployments d ON d.id = o.deployment_id
JOIN unnest(CAST(:groups AS text[]), CAST(:kinds AS text[]), CAST(:namespaces AS text[]),
            CAST(:names AS text[])) AS w(api_group, kind, namespace, name)
  ON (o.api_group, o.kind, o.namespace, o.name) = (w.api_group, w.kind, w.namespace, w.name)
WHERE o.deployment_id <> :deployment_id
ORDER BY o.kind, o.namespace, o.name;


-- name: inventory_of
-- The objects one deployment owns, in a stable order.  Always applies.
SELECT api_version, kind, namespace, name
FROM deployment_objects
WHERE deployment_id = :deployment_id
ORDER BY api_group, kind, namespace, name;

-- name: all_inventory
-- Every owned object with its owner: what the daemon's watches must cover.  Always applies.
SELECT o.deployment_id, o.api_version, o.kind, o.namespace, o.name
FROM deployment_objects o;

-- name: forget_objects
-- Drop objects from one deployment's inventory (pruned, deleted, or no longer its own).
DELETE FROM deployment_objects o
USING unnest(CAST(:groups AS text[]), CAST(:kinds AS text[]), CAST(:namespaces AS text[]),
             CAST(:names AS text[])) AS w(api_group, kind, namespace, name)
WHERE o.deployment_id = :deployment_id
  AND (o.api_group, o.kind, o.namespace, o.name) = (w.api_group, w.kind, w.namespace, w.name);

-- name: record_object_health
-- The health the watch last saw of owned objects; rows whose health and message are unchanged
-- are left alone (updated_at says when it last changed).
UPDATE deployment_objects o
SET health = w.health, message = w.message, updated_at = now()
FROM unnest(CAST(:groups AS text[]), CAST(:kinds AS text[]), CAST(:namespaces AS text[]),
            CAST(:names AS text[]), CAST(:healths AS text[]), CAST(:messages AS text[]))
     AS w(api_group, kind, namespace, name, health, message)
WHERE (o.api_group, o.kind, o.namespace, o.name) = (w.api_group, w.kind, w.namespace, w.name)
  AND (o.health, o.message) IS DISTINCT FROM (w.health, w.message);


-- ============================================================== live state

-- name: request_heal
-- The watch saw managed objects changed or deleted by someone else: ask for a heal (the claim
-- takes it).  Precondition: the deployment's objects are meant to be on the cluster as last
-- applied (active or rollback, and healthy, degraded or drifted) and no heal is pending.
UPDATE deployments
SET heal_requested_at = now()
WHERE id = ANY(CAST(:ids AS bigint[]))
  AND heal_requested_at IS NULL
  AND desired_status IN ('active', 'rollback')
  AND current_status IN ('healthy', 'degraded', 'drifted')
RETURNING id;

-- name: record_health_change
-- A health change seen after the rollout (healthy <-> degraded): the row's status and message,
-- and one history row, in one statement.  Precondition: no attempt holds the row and its
-- status is still the one the change starts from.
WITH changed AS (
    UPDATE deployments
    SET current_status = :to_status, status_message = :message, status_changed_at = now()
    WHERE id = :id AND current_status = :from_status AND claimed_by IS NULL
      AND attempt_started_at IS NULL
    RETURNING id, generation, current_image_ref, current_sha, current_values, applied_digest
)
INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref, sha,
                                values_override, digest, message, daemon, started_at,
                                finished_at, duration_ms)
SELECT id, generation, 'health', :to_status, coalesce(current_image_ref, ''), current_sha,
       coalesce(current_values, '{}'::jsonb), applied_digest, :message, :daemon,
       clock_timestamp(), clock_timestamp(), 0
FROM changed
RETURNING deployment_id;

-- name: watched_deployments
-- The deployments whose objects the daemon watches for health and drift, with their status.
SELECT id, project, environment, current_status, desired_status, paused, self_heal
FROM deployments
WHERE current_status IN ('healthy', 'degraded', 'drifted');

-- name: watched_among
-- Of the given deployments, those whose objects are watched (as watched_deployments).
SELECT id, project, environment, current_status, desired_status, paused, self_heal
FROM deployments
WHERE id = ANY(CAST(:ids AS bigint[]))
  AND current_status IN ('healthy', 'degraded', 'drifted');

-- name: inventory_among
-- The objects the given deployments own, with their owner.
SELECT deployment_id, api_version, kind, namespace, name
FROM deployment_objects
WHERE deployment_id = ANY(CAST(:ids AS bigint[]));

-- name: history_entry
-- One history row by id; no row when there is none.
SELECT id, deployment_id, generation, action, status, image_ref, sha, values_override, digest,
       message, daemon, started_at, finished_at, duration_ms, rolled_back_to
FROM deployment_history
WHERE id = :id;


-- ============================================================== history retention

-- name: prune_history
-- Delete up to the batch size of the oldest history rows finished before the cutoff (now less
-- the given seconds).  Kept whatever their age, for each deployment still there: its newest
-- row (the status view shows it) and the newest healthy deploy or rollback of each of its two
-- most recent healthy images (what a rollback returns to, from either).  Returns the ids.
WITH healthy AS (
    SELECT DISTINCT ON (deployment_id, image_ref) id, deployment_id
    FROM deployment_history
    WHERE deployment_id IS NOT NULL AND status = 'healthy' AND action IN ('deploy', 'rollback')
    ORDER BY deployment_id, image_ref, id DESC
), kept AS (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY deployment_id ORDER BY id DESC) AS rank
        FROM healthy
    ) ranked
    WHERE rank <= 2
    UNION
    SELECT max(id) FROM deployment_history WHERE deployment_id IS NOT NULL GROUP BY deployment_id
    UNION
    SELECT rollback_to FROM deployments WHERE rollback_to IS NOT NULL
)
DELETE FROM deployment_history
WHERE id IN (
    SELECT h.id FROM deployment_history h
    WHERE h.finished_at < now() - make_interval(secs => CAST(:keep_s AS double precision))
      AND h.id NOT IN (SELECT id FROM kept)
    ORDER BY h.id
    LIMIT :batch
)
RETURNING id;


-- ============================================================== metrics

-- name: counts_by_status
-- How many deployments are in each current_status: the daemon's /metrics, at each scrape
-- (one aggregate over the table, whatever its size), and reconciler.testing.dbtools.
SELECT current_status, count(*) AS count
FROM deployments
GROUP BY current_status;


-- ============================================================== outgoing webhooks

-- name: add_webhook
-- Register a webhook; the row without its secret (signed: whether it has one).
INSERT INTO event_webhooks (name, url, project, environment, format, secret, statuses)
VALUES (:name, :url, :project, :environment, :format, :secret, CAST(:statuses AS text[]))
RETURNING id, name, url, project, environment, format, statuses, enabled,
          secret IS NOT NULL AS signed, created_at;

-- name: list_webhooks
-- Every webhook by name, without its secret.
SELECT id, name, url, project, environment, format, statuses, enabled,
       secret IS NOT NULL AS signed, created_at
FROM event_webhooks
ORDER BY name;

-- name: remove_webhook
-- Unregister a webhook by name (its deliveries go with it); its id, no row when none.
DELETE FROM event_webhooks WHERE name = :name RETURNING id;

-- name: recent_deliveries
-- The newest deliveries (of one webhook, or of all), with each attempt's code and error.
SELECT d.id, w.name AS webhook, d.event ->> 'project' AS project,
       d.event ->> 'environment' AS environment,
       (d.event ->> 'from') || ' -> ' || (d.event ->> 'to') AS transition,
       d.status, d.attempts, d.last_code, d.last_error,
       CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
       d.created_at, d.delivered_at
FROM event_deliveries d
JOIN event_webhooks w ON w.id = d.webhook_id
WHERE CAST(:name AS text) IS NULL OR w.name = CAST(:name AS text)
ORDER BY d.id DESC
LIMIT :limit;

-- name: claim_deliveries
-- Claim up to the limit of due pending deliveries of enabled webhooks (rows another daemon is
-- claiming are skipped): counts the attempt and leases the row (next_attempt_at moves the
-- lease's length ahead, so a daemon that dies mid-POST leaves it due again).  With what
-- posting needs.
WITH due AS (
    SELECT d.id
    FROM event_deliveries d
    JOIN event_webhooks w ON w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.enabled
    ORDER BY d.next_attempt_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE event_deliveries d
SET claimed_by = :daemon_id,
    attempts = d.attempts + 1,
    next_attempt_at = now() + make_interval(secs => CAST(:lease_s AS double precision))
FROM due, event_webhooks w
WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, w.name AS webhook, w.url, w.format, w.secret, d.event, d.attempts;

-- name: finish_delivery
-- Record one attempt of a delivery this daemon claimed: delivered, failed, or pending again
-- after the given seconds; its code and error either way.  Returns the id when recorded.
UPDATE event_deliveries
SET status = CAST(:status AS text),
    last_code = CAST(:code AS integer),
    last_error = CAST(:error AS text),
    claimed_by = NULL,
    delivered_at = CASE WHEN CAST(:status AS text) = 'delivered' THEN clock_timestamp() END,
    next_attempt_at = CASE WHEN CAST(:status AS text) = 'pending'
                           THEN clock_timestamp()
                                + make_interval(secs => CAST(:retry_in_s AS double precision))
                      END
WHERE id = :id AND claimed_by = :daemon_id AND status = 'pending'
RETURNING id;

-- name: release_deliveries
-- Give back deliveries this daemon claimed but did not finish (it is shutting down): due now,
-- the interrupted attempt not counted, the reason recorded.
UPDATE event_deliveries
SET claimed_by = NULL,
    attempts = greatest(attempts - 1, 0),
    next_attempt_at = now(),
    last_error = :error
WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :daemon_id AND status = 'pending';

-- name: prune_deliveries
-- Delete up to the batch size of finished deliveries (delivered or failed) created before the
-- cutoff (now less the given seconds), oldest first; pending ones are kept.  Returns the ids.
DELETE FROM event_deliveries
WHERE id IN (
    SELECT id FROM event_deliveries
    WHERE status <> 'pending'
      AND created_at < now() - make_interval(secs => CAST(:keep_s AS double precision))
    ORDER BY id
    LIMIT :batch
)
RETURNING id;


-- ==== the HTTP API: tokens, the audit, the API's reads and writes

-- name: claim_change
-- Tell the audit trigger (migration 0009) how this transaction's writes came and who asked:
-- local to the transaction.  It believes the claim only from the daemon's role.
SELECT set_config('reconciler.via', CAST(:via AS text), true),
       set_config('reconciler.actor', coalesce(CAST(:actor AS text), ''), true);

-- name: create_api_token
-- Record a new token by its hash.  The name must be new; CHECK constraints vet the rest.
INSERT INTO api_tokens (name, token_hash, scope, project)
VALUES (:name, :token_hash, :scope, CAST(:project AS text))
RETURNING id, name, scope, project, created_at, revoked_at, last_used_at;

-- name: list_api_tokens
-- Every token, revoked ones too, by name; never the hash.  Always applies.
SELECT id, name, scope, project, created_at, revoked_at, last_used_at
FROM api_tokens
ORDER BY name;

-- name: revoke_api_token
-- Revoke a token by name.  Precondition: not revoked already; no row otherwise.
UPDATE api_tokens
SET revoked_at = now()
WHERE name = :name AND revoked_at IS NULL
RETURNING id, name, scope, project, created_at, revoked_at, last_used_at;

-- name: authenticate_api_token
-- The live (unrevoked) token with this hash, no row when there is none; its last use is
-- recorded, at most once a minute, so that a busy pipeline does not write on every request.
WITH found AS (
    SELECT id, name, scope, project, created_at, revoked_at, last_used_at
    FROM api_tokens
    WHERE token_hash = :token_hash AND revoked_at IS NULL
), touched AS (
    UPDATE api_tokens t
    SET last_used_at = now()
    FROM found
    WHERE t.id = found.id
      AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds')
    RETURNING t.id
)
SELECT id, name, scope, project, created_at, revoked_at, last_used_at FROM found;

-- name: audit_rows
-- The newest audit rows, newest first, at most the limit; NULL filters show everything.
SELECT id, at, deployment_id, project, environment, operation, changes, generation, via,
       actor, claimed_via, claimed_actor, db_user, application_name
FROM deployment_audit
WHERE (CAST(:project AS text) IS NULL OR project = CAST(:project AS text))
  AND (CAST(:environment AS text) IS NULL OR environment = CAST(:environment AS text))
ORDER BY id DESC
LIMIT :limit;

-- name: deployments_of
-- Every deployment of one project (every project when NULL), by project and environment.
SELECT id, project, environment, namespace, ops_repo_id, image_ref, values_override,
       desired_status, current_status, current_image_ref, current_sha, current_values,
       deployed_at, status_message, generation, observed_generation, claimed_by,
       lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
       attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
       rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
       redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to
FROM deployments
WHERE CAST(:project AS text) IS NULL OR project = CAST(:project AS text)
ORDER BY project, environment;

-- name: objects_with_health
-- The objects one deployment owns, with the health the watch last saw.  Always applies.
SELECT api_version, kind, namespace, name, health, message, applied_at, updated_at
FROM deployment_objects
WHERE deployment_id = :deployment_id
ORDER BY api_group, kind, namespace, name;

-- name: patch_deployment
-- The API's PATCH: the desired-state columns flagged set_*, in the one UPDATE a pipeline
-- would write (the trigger bumps generation and vets the values); no row when the deployment
-- does not exist.
UPDATE deployments
SET image_ref = CASE WHEN :set_image_ref THEN CAST(:image_ref AS text) ELSE image_ref END,
    values_override = CASE WHEN :set_values_override
                           THEN CAST(:values_override AS jsonb) ELSE values_override END,
    desired_status = CASE WHEN :set_desired_status
                          THEN CAST(:desired_status AS text) ELSE desired_status END,
    paused = CASE WHEN :set_paused THEN CAST(:paused AS boolean) ELSE paused END
WHERE project = :project AND environment = :environment
RETURNING id, project, environment, namespace, ops_repo_id, image_ref, values_override,
          desired_status, current_status, current_image_ref, current_sha, current_values,
          deployed_at, status_message, generation, observed_generation, claimed_by,
          lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
          attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
          rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
          redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to;


-- ==== git webhooks and freshness

-- name: ops_repos_in_use
-- Every ops repo some deployment uses: the daemon checks each one's remote head every check
-- interval and fetches it when the head moved.  Always applies.
SELECT r.id, r.name, r.repo_url, r.branch, r.path, r.sync_interval_s,
       r.last_synced_at, r.last_sha, r.last_error
FROM ops_repos r
WHERE EXISTS (SELECT 1 FROM deployments d WHERE d.ops_repo_id = r.id)
ORDER BY r.id;

-- name: update_ops_repo
-- `reconciler ops-repo set`: change the flagged columns of one ops repo, leaving the others;
-- no row when there is no such repo.  The table's trigger sends the daemon its 'repo:' NOTIFY
-- when where the repo points changed; CHECK constraints vet the values.
UPDATE ops_repos
SET repo_url = CASE WHEN :set_repo_url THEN CAST(:repo_url AS text) ELSE repo_url END,
    branch = CASE WHEN :set_branch THEN CAST(:branch AS text) ELSE branch END,
    path = CASE WHEN :set_path THEN CAST(:path AS text) ELSE path END,
    sync_interval_s = CASE WHEN :set_sync_interval_s
                           THEN CAST(:sync_interval_s AS integer) ELSE sync_interval_s END
WHERE name = :name
RETURNING id, name, repo_url, branch, path, sync_interval_s,
          last_synced_at, last_sha, last_error;

-- name: rerender_ops_repo
-- After `ops-repo set --path`: the projects of the repo's deployments moved, so each is
-- rendered again at the repo's commit (the claim takes rows whose rendered commit is unknown).
UPDATE deployments SET rendered_sha = NULL
WHERE ops_repo_id = :ops_repo_id AND rendered_sha IS NOT NULL;

-- name: deployments_of_ops_repo
-- The deployments (project/environment) that still use one ops repo, by name.
SELECT d.project, d.environment
FROM deployments d JOIN ops_repos r ON r.id = d.ops_repo_id
WHERE r.name = :name
ORDER BY d.project, d.environment;

-- name: remove_ops_repo
-- `reconciler ops-repo remove`: delete one ops repo no deployment uses (its policy goes with
-- it); no row when there is no such repo or a deployment still uses it.
DELETE FROM ops_repos r
WHERE r.name = :name
  AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.ops_repo_id = r.id)
RETURNING r.id;


-- ============================================================== the hot path in one statement each
--
-- An attempt's steps, one statement each (CTEs: all or nothing), sent without BEGIN and
-- COMMIT where nothing else shares the transaction: the server's work per deployment is
-- then its statements, not the round trips around them.

-- name: claim_closing_interrupted
-- Lease up to the limit of rows needing work: a new generation; a failure whose retry is due;
-- a row left 'syncing'; a heal the watch asked for; an active (or rollback) row whose objects
-- are on the cluster (or that failed) not rendered at its ops repo's last synced commit (a
-- commit may change its output, or fix what made it fail).  Precondition: no live lease of
-- another daemon, not in this daemon's in-flight set, not paused, and not locked by another
-- transaction (SKIP LOCKED).  A claimed row still carrying an attempt (attempt_started_at set:
-- its daemon died mid-rollout) has that attempt closed in the same statement: its
-- 'interrupted' history row written from the values the claim locked, the attempt columns
-- cleared, so an attempt is closed exactly once.  Returns the claimed rows as they are after
-- it (a deployment's columns), by id, each with last_writer: the daemon of the attempt that
-- wrote its objects last (the one closed here, else its newest history row; NULL if unknown).
WITH candidates AS (
    SELECT d.id, d.claimed_by AS previous_owner,
           CASE WHEN d.attempt_started_at IS NOT NULL THEN d.claimed_by
                ELSE (SELECT h.daemon FROM deployment_history h WHERE h.deployment_id = d.id
                      ORDER BY h.id DESC LIMIT 1)
           END AS last_writer,
           d.attempt_started_at AS open_started_at, d.attempt_action AS open_action,
           d.attempt_image_ref AS open_image_ref, d.attempt_generation AS open_generation,
           -- An attempt started before attempt_values existed has only the row's values.
           COALESCE(d.attempt_values, d.values_override) AS open_values
    FROM deployments d
    WHERE d.id = ANY(ARRAY(
        SELECT id FROM deployments
        WHERE (generation <> observed_generation
               OR current_status IN ('syncing', 'failed'))
          AND (generation <> observed_generation
               OR current_status = 'syncing'
               OR next_attempt_at <= now())
        UNION
        SELECT id FROM deployments WHERE heal_requested_at IS NOT NULL
        UNION
        SELECT moved.id FROM ops_repos r CROSS JOIN LATERAL (
            SELECT id FROM deployments
            WHERE ops_repo_id = r.id
              AND desired_status IN ('active', 'rollback')
              AND current_status IN ('healthy', 'failed', 'degraded', 'drifted')
              AND (rendered_sha < r.last_sha OR rendered_sha > r.last_sha
                   OR rendered_sha IS NULL)
            OFFSET 0
        ) moved
        WHERE r.last_sha IS NOT NULL))
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now()
           OR d.claimed_by = :daemon_id)
      AND d.id <> ALL(CAST(:in_flight AS bigint[]))
      AND NOT d.paused
    ORDER BY d.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE deployments d
    SET claimed_by = :daemon_id,
        lease_expires_at = now() + make_interval(secs => :lease_s),
        attempt_started_at = NULL, attempt_action = NULL,
        attempt_image_ref = NULL, attempt_generation = NULL, attempt_values = NULL
    FROM candidates c
    WHERE d.id = c.id
    RETURNING d.id, d.project, d.environment, d.namespace, d.ops_repo_id, d.image_ref,
              d.values_override, d.desired_status, d.current_status, d.current_image_ref,
              d.current_sha, d.current_values, d.deployed_at, d.status_message, d.generation,
              d.observed_generation, d.claimed_by, d.lease_expires_at, d.attempt_started_at,
              d.attempt_action, d.attempt_image_ref, d.attempt_generation, d.attempts,
              d.next_attempt_at, d.applied_digest, d.attempt_values, d.rendered_sha, d.paused,
              d.cancel_requested_generation, d.redeploy_requested_at, d.redeploy_restart,
              d.self_heal, d.prune_all_allowed, d.heal_requested_at, d.rollback_to,
              c.previous_owner, c.last_writer, c.open_started_at, c.open_action,
              c.open_image_ref, c.open_generation, c.open_values
), closed AS (
    INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref,
                                    values_override, message, daemon, started_at,
                                    finished_at, duration_ms)
    SELECT id, open_generation, open_action, 'interrupted', open_image_ref, open_values,
           :message, previous_owner, open_started_at, now(),
           LEAST(extract(epoch FROM now() - open_started_at) * 1000, 2147483647)::int
    FROM claimed
    WHERE open_started_at IS NOT NULL
)
SELECT id, project, environment, namespace, ops_repo_id, image_ref, values_override,
       desired_status, current_status, current_image_ref, current_sha, current_values,
       deployed_at, status_message, generation, observed_generation, claimed_by,
       lease_expires_at, attempt_started_at, attempt_action, attempt_image_ref,
       attempt_generation, attempts, next_attempt_at, applied_digest, attempt_values,
       rendered_sha, paused, cancel_requested_generation, redeploy_requested_at,
       redeploy_restart, self_heal, prune_all_allowed, heal_requested_at, rollback_to,
       last_writer
FROM claimed
ORDER BY id;

-- name: policy_and_inventory
-- The policy of one ops repo and the objects one deployment owns, read in one statement (one
-- snapshot): at least one row; the policy columns are NULL when the repo has none (the
-- defaults then apply), the object columns NULL when it owns nothing.  Objects in a stable
-- order.
SELECT (p.ops_repo_id IS NOT NULL) AS has_policy, p.namespaces, p.cluster_kinds,
       p.denied_kinds, p.service_account,
       o.api_version, o.kind, o.namespace, o.name
FROM (SELECT 1) AS one
LEFT JOIN ops_repo_policies p ON p.ops_repo_id = :ops_repo_id
LEFT JOIN deployment_objects o ON o.deployment_id = :deployment_id
ORDER BY o.api_group, o.kind, o.namespace, o.name;

-- name: start_attempt_claiming
-- The start of an attempt and claim_objects in one statement: the row marked 'syncing' with the attempt,
-- and the objects recorded as its own (an object another deployment owns keeps its owner).
-- Precondition: claimed by this daemon (no row otherwise, and no object is claimed).  Returns
-- the attempt's start and how many of the objects are now the deployment's: fewer than given
-- means another deployment owns some (the caller reads which, and rolls back).
WITH started AS (
    UPDATE deployments
    SET current_status = 'syncing',
        status_changed_at = CASE WHEN current_status = 'syncing'
                                 THEN status_changed_at ELSE now() END,
        attempt_started_at = clock_timestamp(), attempt_action = :action,
        attempt_image_ref = :image_ref, attempt_generation = :generation,
        attempt_values = CAST(:values_override AS jsonb)
    WHERE id = :id AND claimed_by = :daemon_id
    RETURNING id, attempt_started_at
), owned AS (
    INSERT INTO deployment_objects (deployment_id, api_group, api_version, kind, namespace, name)
    SELECT s.id, w.api_group, w.api_version, w.kind, w.namespace, w.name
    FROM started s,
         unnest(CAST(:groups AS text[]), CAST(:versions AS text[]), CAST(:kinds AS text[]),
                CAST(:namespaces AS text[]), CAST(:names AS text[]))
         AS w(api_group, api_version, kind, namespace, name)
    ON CONFLICT (api_group, kind, namespace, name) DO UPDATE
    SET api_version = EXCLUDED.api_version, updated_at = now()
    WHERE deployment_objects.deployment_id = EXCLUDED.deployment_id
    RETURNING 1
)
SELECT s.attempt_started_at, (SELECT count(*) FROM owned) AS owned
FROM started s;

-- name: finish_attempt_recording
-- Record how an attempt ended, in one statement, all or nothing: the row (released from the
-- claim), its history row, and the objects it applied (the arrays; empty when none).  The
-- flags and values come from reconciler.decide.row_transition.  Precondition: the attempt that
-- started at started_at is still this daemon's (no row, and nothing written, otherwise:
-- another daemon took over and closed it).  A healthy rollback restores the desired state
-- only while the row is still at the generation the attempt worked on: a newer desired state
-- written meanwhile wins, and observed_generation stays behind it so that it is reconciled
-- next.  When it restores, the trigger bumps generation by one, which observed_generation
-- then already names.  rendered_sha takes the attempt's commit (an attempt without a
-- checkout: the commit it was for, so it is not claimed again for that commit; a rollback to
-- an older commit: the tip it was rendered beside, so it stays at its commit until a new
-- one).  A redeploy request is done with once its generation is observed; a heal request once
-- an attempt that started after it is observed (a deploy applies everything, so it heals too).
WITH finished AS (
    UPDATE deployments
    SET current_status = :current_status,
        status_changed_at = CASE WHEN current_status = :current_status
                                 THEN status_changed_at ELSE now() END,
        status_message = :message,
        attempt_started_at = NULL, attempt_action = NULL,
        attempt_image_ref = NULL, attempt_generation = NULL, attempt_values = NULL,
        claimed_by = NULL, lease_expires_at = NULL,
        attempts = :attempts,
        next_attempt_at = now() + make_interval(secs => CAST(:retry_in_s AS double precision)),
        observed_generation = CASE
            WHEN NOT :observes THEN observed_generation
            WHEN :restores_desired AND generation <> CAST(:generation AS bigint)
                THEN observed_generation
            ELSE CAST(:observed_generation AS bigint) END,
        rendered_sha = CASE WHEN :observes
                            THEN COALESCE(CAST(:rendered_sha AS text), CAST(:sha AS text),
                                          (SELECT r.last_sha FROM ops_repos r
                                           WHERE r.id = deployments.ops_repo_id),
                                          rendered_sha)
                            ELSE rendered_sha END,
        current_image_ref = CASE WHEN :records_current
                                 THEN CAST(:image_ref AS text) ELSE current_image_ref END,
        current_values = CASE WHEN :records_current
                              THEN CAST(:values_override AS jsonb) ELSE current_values END,
        current_sha = CASE WHEN :records_current THEN CAST(:sha AS text) ELSE current_sha END,
        applied_digest = CASE WHEN :records_current
                              THEN CAST(:applied_digest AS text) ELSE applied_digest END,
        deployed_at = CASE WHEN :deployed THEN now() ELSE deployed_at END,
        redeploy_requested_at = CASE WHEN :observes AND generation = CAST(:generation AS bigint)
                                     THEN NULL ELSE redeploy_requested_at END,
        redeploy_restart = CASE WHEN :observes AND generation = CAST(:generation AS bigint)
                                THEN false ELSE redeploy_restart END,
        image_ref = CASE WHEN :restores_desired AND generation = CAST(:generation AS bigint)
                         THEN CAST(:image_ref AS text) ELSE image_ref END,
        values_override = CASE WHEN :restores_desired
                                    AND generation = CAST(:generation AS bigint)
                               THEN CAST(:values_override AS jsonb) ELSE values_override END,
        desired_status = CASE WHEN :restores_desired AND generation = CAST(:generation AS bigint)
                              THEN 'active' ELSE desired_status END,
        rollback_to = CASE WHEN :restores_desired AND generation = CAST(:generation AS bigint)
                           THEN NULL ELSE rollback_to END,
        heal_requested_at = CASE WHEN :observes
                                  AND heal_requested_at <= CAST(:started_at AS timestamptz)
                                 THEN NULL ELSE heal_requested_at END
    WHERE id = :id AND claimed_by = :daemon_id
      AND attempt_started_at = CAST(:started_at AS timestamptz)
    RETURNING id
), recorded AS (
    INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref, sha,
                                    values_override, digest, message, daemon, rolled_back_to,
                                    started_at, finished_at, duration_ms)
    SELECT f.id, :generation, :action, :status, :image_ref, :sha,
           CAST(:values_override AS jsonb), :digest, :message, :daemon_id,
           CAST(:rolled_back_to AS bigint),
           CAST(:started_at AS timestamptz), clock_timestamp(),
           LEAST(extract(epoch FROM clock_timestamp() - CAST(:started_at AS timestamptz))
                 * 1000, 2147483647)::int
    FROM finished f
), applied AS (
    UPDATE deployment_objects o
    SET applied_at = now(), updated_at = now()
    FROM finished f,
         unnest(CAST(:groups AS text[]), CAST(:kinds AS text[]), CAST(:namespaces AS text[]),
                CAST(:names AS text[])) AS w(api_group, kind, namespace, name)
    WHERE o.deployment_id = f.id
      AND (o.api_group, o.kind, o.namespace, o.name) = (w.api_group, w.kind, w.namespace, w.name)
)
SELECT id FROM finished;
