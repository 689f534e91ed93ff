-- src/bgw/jobs.sql
-- Jobs run by pgmaker's background workers: the queue, its parts, the
-- schedules of retraining, and the functions that queue, wait for and
-- cancel them.  The tables are written only by the extension's functions
-- and workers; roles read them through the columns granted below and the
-- view ml.job_status.

CREATE TABLE ml.schedules (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL DEFAULT 'retrain' CHECK (kind IN ('retrain', 'monitor')),
    project_id  bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    every       interval NOT NULL CHECK (every >= interval '1 second'),
    source      text CHECK (source IS NOT NULL OR kind = 'monitor'),
    options     jsonb NOT NULL DEFAULT '{}',
    owner       regrole NOT NULL,
    search_path text,
    enabled     boolean NOT NULL DEFAULT true,
    next_run    timestamptz NOT NULL,
    last_run    timestamptz,
    last_job_id bigint,
    last_status text,
    last_result jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ml.schedules IS 'Schedules of a project: every interval a job retrains it on the source with the options (promoting only a model that passes the gate), or monitors the source against its live model.';

CREATE TABLE ml.jobs (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('batch_predict', 'train', 'monitor')),
    project_id  bigint REFERENCES ml.projects (id) ON DELETE SET NULL,
    schedule_id bigint REFERENCES ml.schedules (id) ON DELETE SET NULL,
    args        jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    progress    float8 NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    rows_done   bigint NOT NULL DEFAULT 0,
    rows_total  bigint,
    model_id    bigint,
    result      jsonb,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    error       text,
    owner       regrole NOT NULL,
    pid         int,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX ON ml.jobs (status) WHERE status IN ('queued', 'running');
COMMENT ON TABLE ml.jobs IS 'One row per background job: its kind, arguments, status, progress and outcome.  A job runs as its owner.';

-- A job is done in parts, each by one worker: a batch prediction with
-- "workers": n has up to n, each over a range of keys (lo, hi]; every other
-- job has one.  checkpoint is the last key a part committed.
CREATE TABLE ml.job_parts (
    job_id      bigint NOT NULL REFERENCES ml.jobs (id) ON DELETE CASCADE,
    part        int NOT NULL,
    lo          text,
    hi          text,
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    checkpoint  text,
    rows_done   bigint NOT NULL DEFAULT 0,
    rows_total  bigint,
    attempts    int NOT NULL DEFAULT 0,
    pid         int,
    started_at  timestamptz,
    finished_at timestamptz,
    error       text,
    PRIMARY KEY (job_id, part)
);
COMMENT ON TABLE ml.job_parts IS 'The parts of a job, each run by one worker, with the checkpoint it resumes from.';

REVOKE ALL ON ml.schedules, ml.jobs, ml.job_parts FROM PUBLIC;
GRANT SELECT (id, kind, project_id, schedule_id, status, progress, rows_done, rows_total, model_id,
              queued_at, started_at, finished_at, error, owner, pid) ON ml.jobs TO PUBLIC;
GRANT SELECT (job_id, part, status, rows_done, rows_total, attempts, started_at, finished_at, error)
    ON ml.job_parts TO PUBLIC;
GRANT SELECT (id, kind, project_id, every, owner, enabled, next_run, last_run, last_job_id, last_status)
    ON ml.schedules TO PUBLIC;

-- A job or schedule is seen by the members of its owner role and of
-- ml_admin (who may also cancel and remove it); the launcher and workers
-- run as a superuser, and the functions write as the tables' owner.
ALTER TABLE ml.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_of_owner ON ml.jobs FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE') OR pg_catalog.pg_has_role('ml_admin', 'USAGE'));
ALTER TABLE ml.job_parts ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_parts_of_owner ON ml.job_parts FOR SELECT
    USING (job_id IN (SELECT j.id FROM ml.jobs j));
ALTER TABLE ml.schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedules_of_owner ON ml.schedules FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE') OR pg_catalog.pg_has_role('ml_admin', 'USAGE'));

-- Every job with its elapsed time and, while it runs, an estimate of the
-- time left from its progress so far.  The views read the tables as their
-- owner (arguments and results are not granted to ml_user), so they keep
-- the policies' rows themselves.
CREATE VIEW ml.job_status AS
SELECT j.id, j.kind, p.name AS project, j.schedule_id, j.status, j.progress,
       j.rows_done, j.rows_total, j.model_id, j.args, j.result,
       j.error, j.owner, j.pid, j.queued_at, j.started_at, j.finished_at,
       coalesce(j.finished_at, now()) - j.started_at AS elapsed,
       CASE WHEN j.status = 'running' AND j.progress > 0 AND j.progress < 1
            THEN (now() - j.started_at) * ((1 - j.progress) / j.progress) END AS eta
  FROM ml.jobs j LEFT JOIN ml.projects p ON p.id = j.project_id
 WHERE pg_catalog.pg_has_role(j.owner, 'USAGE') OR pg_catalog.pg_has_role('ml_admin', 'USAGE');
COMMENT ON VIEW ml.job_status IS 'Jobs with elapsed time and estimated time left; shown to members of the owning role and of ml_admin.';

CREATE VIEW ml.schedule_status AS
SELECT s.id, p.name AS project, s.every, s.source, s.options,
       s.owner, s.enabled, s.next_run, s.last_run, s.last_job_id, s.last_status, s.last_result,
       s.kind
  FROM ml.schedules s JOIN ml.projects p ON p.id = s.project_id
 WHERE pg_catalog.pg_has_role(s.owner, 'USAGE') OR pg_catalog.pg_has_role('ml_admin', 'USAGE');
COMMENT ON VIEW ml.schedule_status IS 'Retraining and monitoring schedules with their next and last run and the last run''s outcome; shown to members of the owning role and of ml_admin.';

GRANT SELECT ON ml.job_status, ml.schedule_status TO PUBLIC;

CREATE FUNCTION ml._source_query(source text) RETURNS text
AS 'MODULE_PATHNAME', 'ml_source_query' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION ml._source_query(text) IS 'The query a source argument stands for (internal).';

CREATE FUNCTION ml._column_type(query text, col text) RETURNS regtype
AS 'MODULE_PATHNAME', 'ml_column_type' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION ml._column_type(text, text) IS 'The type of a column of a query''s result (internal).';

CREATE FUNCTION ml._require_workers() RETURNS void
AS 'MODULE_PATHNAME', 'ml_require_workers' LANGUAGE C STABLE;
COMMENT ON FUNCTION ml._require_workers() IS 'Raises an error unless pgmaker''s launcher serves this database (internal).';

CREATE FUNCTION ml._queue_job(kind text, project_id bigint, schedule_id bigint, args jsonb, bounds text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_queue_job' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ml._queue_job(text, bigint, bigint, jsonb, text[]) IS
'Queues a job owned by the calling role, in one part per range between bounds, and wakes the launcher when the transaction commits (internal).';

CREATE FUNCTION ml.cancel_job(id bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'ml_cancel_job' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ml.cancel_job(bigint) IS
'Cancels a queued or running job of a role the caller is a member of; false when the job had already ended.';

CREATE FUNCTION ml.job_wait(id bigint, timeout interval DEFAULT NULL)
RETURNS ml.job_status
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    j ml.job_status;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'job id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF timeout < interval '0' THEN
        RAISE EXCEPTION 'timeout must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each look needs a new snapshot to see the worker's commits
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ml.job_wait cannot see a job end in a % transaction', current_setting('transaction_isolation')
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'Call it outside an explicit transaction, or in a READ COMMITTED one.';
    END IF;
    LOOP
        SELECT * INTO j FROM ml.job_status s WHERE s.id = job_wait.id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'job % does not exist', job_wait.id USING ERRCODE = 'undefined_object';
        END IF;
        EXIT WHEN j.status IN ('succeeded', 'failed', 'canceled');
        EXIT WHEN clock_timestamp() >= deadline;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
    RETURN j;
END
$$;
COMMENT ON FUNCTION ml.job_wait(bigint, interval) IS
'Waits until a job ends (succeeded, failed or canceled) and returns its row; with a timeout, returns it when the timeout passes even if it is still queued or running.';

CREATE FUNCTION ml._project_for_job(project text, privilege text) RETURNS bigint
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF project IS NULL THEN
        RAISE EXCEPTION 'project must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN ml._project_access(project, privilege);
END
$$;
COMMENT ON FUNCTION ml._project_for_job(text, text) IS 'The id of a project named by a job''s argument, which the caller may use at the level privilege (internal).';

CREATE FUNCTION ml.batch_predict(project text, source text, "into" text, key text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    pid bigint;
    q text;
    ktype regtype;
    target regclass;
    rel regclass;
    target_name text;
    nworkers int := 1;
    chunk int := 10000;
    opt text;
    dup text;
    ndup bigint;
    bounds text[];
    cols text[];
    want text[];
BEGIN
    pid := ml._project_for_job(project, 'predict');
    IF source IS NULL OR "into" IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'source, into and key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ml.deployments d WHERE d.project_id = pid) THEN
        RAISE EXCEPTION 'project "%" has no deployed model', project
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Deploy a model with ml.train or ml.deploy first.';
    END IF;
    options := coalesce(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object, not %', jsonb_typeof(options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR opt IN SELECT jsonb_object_keys(options) LOOP
        IF opt NOT IN ('workers', 'chunk_rows', 'batch_size', 'log_predictions') THEN
            RAISE EXCEPTION 'unknown option "%" of ml.batch_predict', opt
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Valid options are workers, chunk_rows, batch_size and log_predictions.';
        END IF;
    END LOOP;
    IF options ? 'workers' THEN
        IF jsonb_typeof(options -> 'workers') <> 'number' OR (options ->> 'workers')::numeric <> trunc((options ->> 'workers')::numeric)
           OR (options ->> 'workers')::numeric < 1 THEN
            RAISE EXCEPTION 'option "workers" must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (options ->> 'workers')::numeric > current_setting('ml.max_workers')::int THEN
            RAISE EXCEPTION 'option "workers" is %, more than ml.max_workers (%)',
                options ->> 'workers', current_setting('ml.max_workers')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Ask for at most ml.max_workers workers, or raise ml.max_workers.';
        END IF;
        nworkers := (options ->> 'workers')::int;
    END IF;
    IF options ? 'chunk_rows' THEN
        IF jsonb_typeof(options -> 'chunk_rows') <> 'number' OR (options ->> 'chunk_rows')::numeric <> trunc((options ->> 'chunk_rows')::numeric)
           OR (options ->> 'chunk_rows')::numeric NOT BETWEEN 1 AND 10000000 THEN
            RAISE EXCEPTION 'option "chunk_rows" must be an integer between 1 and 10000000' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        chunk := (options ->> 'chunk_rows')::int;
    END IF;
    IF options ? 'batch_size' AND (jsonb_typeof(options -> 'batch_size') <> 'number'
            OR (options ->> 'batch_size')::numeric <> trunc((options ->> 'batch_size')::numeric)
            OR (options ->> 'batch_size')::numeric NOT BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'option "batch_size" must be an integer between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'log_predictions' AND jsonb_typeof(options -> 'log_predictions') <> 'boolean' THEN
        RAISE EXCEPTION 'option "log_predictions" must be a boolean' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    q := ml._source_query(source);
    ktype := ml._column_type(q, key);
    -- a table's unique index on the key, NOT NULL, proves it; else count
    BEGIN
        rel := to_regclass(source);
    EXCEPTION WHEN OTHERS THEN
        rel := NULL;
    END;
    IF rel IS NULL OR NOT EXISTS (
            SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = rel AND i.indisunique AND i.indisvalid AND i.indnatts = 1
               AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = key AND a.attnotnull) THEN
        EXECUTE format('SELECT s.%1$I::text FROM (%2$s) s GROUP BY s.%1$I HAVING count(*) > 1 OR s.%1$I IS NULL LIMIT 1', key, q)
           INTO dup;
        GET DIAGNOSTICS ndup = ROW_COUNT;
        IF ndup > 0 THEN
            RAISE EXCEPTION 'key "%" of the source is not unique', key
                USING ERRCODE = 'unique_violation',
                      DETAIL = CASE WHEN dup IS NULL THEN 'It is NULL in at least one row.'
                                    ELSE format('The value %s appears more than once.', dup) END,
                      HINT = 'A batch prediction resumes after a restart from the last key it committed: the key must identify each row.';
        END IF;
    END IF;

    -- the output: checked against the shape written, or created with it
    target := to_regclass("into");
    IF target IS NOT NULL THEN
        SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
          INTO cols
          FROM pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
        want := ARRAY[key || ' ' || format_type(ktype, NULL), 'prediction double precision', 'label text',
                      'probabilities double precision[]', 'model_id bigint', 'predicted_at timestamp with time zone'];
        IF cols IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'table % exists with a different shape', target
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = format('It has the columns (%s); a batch prediction writes (%s).',
                                      array_to_string(cols, ', '), array_to_string(want, ', ')),
                      HINT = 'Name a new table, which is created, or one of that shape.';
        END IF;
    END IF;

    PERFORM ml._require_workers();

    IF target IS NULL THEN
        EXECUTE format('CREATE TABLE %s (%I %s NOT NULL, prediction float8, label text, probabilities float8[], model_id bigint NOT NULL, predicted_at timestamptz NOT NULL)',
                       "into", key, ktype);
        target := to_regclass("into");
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO target_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;

    IF nworkers > 1 THEN
        EXECUTE format('SELECT array_agg(DISTINCT b::text) FROM unnest((SELECT percentile_disc(%L::float8[]) WITHIN GROUP (ORDER BY s.%I) FROM (%s) s)) b WHERE b IS NOT NULL',
                       (SELECT array_agg(i::float8 / nworkers) FROM generate_series(1, nworkers - 1) i), key, q)
           INTO bounds;
        -- sorted as keys, not as text
        EXECUTE format('SELECT array_agg(b::text ORDER BY b) FROM unnest($1::%s[]) b', ktype) INTO bounds USING bounds;
    END IF;

    RETURN ml._queue_job('batch_predict', pid, NULL,
                         jsonb_build_object('source', source, 'query', q, 'into', target_name, 'key', key,
                                            'key_type', format_type(ktype, NULL), 'chunk_rows', chunk,
                                            'workers', nworkers, 'batch_size', options -> 'batch_size',
                                            'log_predictions', coalesce((options ->> 'log_predictions')::boolean, false),
                                            'project', project),
                         bounds);
END
$$;
COMMENT ON FUNCTION ml.batch_predict(text, text, text, text, jsonb) IS
'Queues a batch prediction of every row of source by the project''s live model into a table (created if missing), in chunks of rows committed with a checkpoint; returns the job id.';

-- ml.train's arguments that a training job or a schedule may carry.
CREATE FUNCTION ml._check_train_options(options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    opt text;
BEGIN
    options := coalesce(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object, not %', jsonb_typeof(options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR opt IN SELECT jsonb_object_keys(options) LOOP
        IF opt NOT IN ('target', 'algorithm', 'task', 'hyperparams', 'preprocess', 'test_size', 'deploy',
                       'gate', 'search', 'search_params') THEN
            RAISE EXCEPTION 'unknown option "%" of a training job', opt
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Valid options are ml.train''s arguments: target, algorithm, task, hyperparams, preprocess, test_size, deploy, gate, search and search_params.';
        END IF;
    END LOOP;
    RETURN options;
END
$$;
COMMENT ON FUNCTION ml._check_train_options(jsonb) IS 'Checks the options of a training job (internal).';

CREATE FUNCTION ml.train_job(project text, source text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    pid bigint;
BEGIN
    IF project IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'project and source must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a project that does not exist yet is created by the job's ml.train
    pid := ml._project_access(project, 'train', missing_ok => true);
    options := ml._check_train_options(options);
    PERFORM ml._source_query(source);
    PERFORM ml._require_workers();
    RETURN ml._queue_job('train', pid, NULL,
                         jsonb_build_object('project', project, 'source', source, 'options', options),
                         NULL);
END
$$;
COMMENT ON FUNCTION ml.train_job(text, text, jsonb) IS
'Queues a training job: ml.train(project, source, ...) with the options as its arguments, run by a background worker; returns the job id.';

CREATE FUNCTION ml._add_schedule(project_id bigint, every interval, source text, options jsonb,
                                  kind text DEFAULT 'retrain') RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_add_schedule' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ml._add_schedule(bigint, interval, text, jsonb, text) IS 'Adds a retraining or monitoring schedule owned by the calling role (internal).';

CREATE FUNCTION ml.schedule_retrain(project text, every interval, source text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    pid bigint;
BEGIN
    pid := ml._project_for_job(project, 'deploy');
    IF every IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'every and source must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF every < interval '1 second' THEN
        RAISE EXCEPTION 'every must be at least 1 second, not %', every
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    options := ml._check_train_options(options);
    PERFORM ml._source_query(source);
    PERFORM ml._require_workers();
    RETURN ml._add_schedule(pid, every, source, options);
END
$$;
COMMENT ON FUNCTION ml.schedule_retrain(text, interval, text, jsonb) IS
'Retrains a project every interval on the source, with ml.train''s arguments in options; each run is a job whose model is promoted only when it passes the gate.  Returns the schedule id.';

CREATE FUNCTION ml.schedule_monitor(project text, every interval, source text DEFAULT NULL,
                                    options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    pid bigint;
    k text;
BEGIN
    pid := ml._project_for_job(project, 'own');
    IF every IS NULL THEN
        RAISE EXCEPTION 'every must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF every < interval '1 second' THEN
        RAISE EXCEPTION 'every must be at least 1 second, not %', every
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    options := coalesce(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(options) LOOP
        IF k NOT IN ('thresholds', 'features', 'window', 'on_violation') THEN
            RAISE EXCEPTION 'unknown option "%"', k USING ERRCODE = 'invalid_parameter_value',
                HINT = 'ml.schedule_monitor takes thresholds, features, window and on_violation.';
        END IF;
    END LOOP;
    IF options ? 'on_violation' AND options->>'on_violation' NOT IN ('alert', 'retrain') THEN
        RAISE EXCEPTION 'option "on_violation" must be "alert" or "retrain"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options->>'on_violation' = 'retrain' AND NOT EXISTS (
            SELECT 1 FROM ml.schedules s WHERE s.project_id = pid AND s.kind = 'retrain' AND s.enabled) THEN
        RAISE EXCEPTION 'project "%" has no retraining schedule to run on a violation', project
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create one with ml.schedule_retrain first.';
    END IF;
    IF source IS NOT NULL THEN
        PERFORM ml._source_query(source);
    ELSIF NOT (ml._capture_counters()).available THEN
        RAISE EXCEPTION 'monitoring captured predictions needs pgmaker in shared_preload_libraries'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM ml._require_workers();
    RETURN ml._add_schedule(pid, every, source, options, 'monitor');
END
$$;
COMMENT ON FUNCTION ml.schedule_monitor(text, interval, text, jsonb) IS
'Monitors a project every interval: a job runs ml.monitor on the source (or, NULL, on the captured predictions of the window) with the options'' thresholds; violations raise an alert and, with "on_violation": "retrain", run the project''s retraining schedule now.  Returns the schedule id.';

CREATE FUNCTION ml.unschedule(id bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'ml_unschedule' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ml.unschedule(bigint) IS 'Removes a retraining or monitoring schedule of a role the caller is a member of; its jobs stay.';

CREATE FUNCTION ml.run_schedule(id bigint) RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_run_schedule' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ml.run_schedule(bigint) IS
'Queues a run of a retraining or monitoring schedule now (for example a retraining on drift), without moving its next run; returns the job id.';

SELECT pg_catalog.pg_extension_config_dump('ml.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('ml.schedules_id_seq', '');

-- ---------- internal: the launcher's and the workers' bookkeeping ----------

-- Sets a job's status, progress and end from its parts: failed as soon as
-- one part failed (its queued parts are canceled, its running ones stop at
-- their next chunk), running while a part is queued or running, then
-- canceled or succeeded.  A schedule's run reports to its schedule; a job
-- that fails raises a job_failed alert.
CREATE FUNCTION ml._settle_job(job bigint) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.jobs;
    n_failed int;
    n_busy int;
    n_started int;
    n_canceled int;
    done bigint;
    total bigint;
    all_totals boolean;
    err text;
    st text;
BEGIN
    SELECT * INTO j FROM ml.jobs WHERE id = job FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF j.cancel_requested OR EXISTS (SELECT 1 FROM ml.job_parts p WHERE p.job_id = job AND p.status = 'failed') THEN
        UPDATE ml.job_parts SET status = 'canceled', finished_at = clock_timestamp() WHERE job_id = job AND status = 'queued';
    END IF;
    SELECT count(*) FILTER (WHERE p.status = 'failed'),
           count(*) FILTER (WHERE p.status IN ('queued', 'running')),
           count(*) FILTER (WHERE p.started_at IS NOT NULL),
           count(*) FILTER (WHERE p.status = 'canceled'),
           coalesce(sum(p.rows_done), 0), sum(p.rows_total), bool_and(p.rows_total IS NOT NULL),
           (array_agg(p.error ORDER BY p.part) FILTER (WHERE p.status = 'failed'))[1]
      INTO n_failed, n_busy, n_started, n_canceled, done, total, all_totals, err
      FROM ml.job_parts p WHERE p.job_id = job;
    st := CASE WHEN n_failed > 0 THEN 'failed'
               WHEN n_busy > 0 THEN CASE WHEN n_started > 0 THEN 'running' ELSE 'queued' END
               WHEN n_canceled > 0 OR j.cancel_requested THEN 'canceled'
               ELSE 'succeeded' END;
    UPDATE ml.jobs
       SET status = st,
           error = CASE WHEN st = 'failed' THEN coalesce(j.error, err) ELSE j.error END,
           rows_done = done,
           rows_total = CASE WHEN j.kind = 'batch_predict' AND all_totals THEN total ELSE j.rows_total END,
           progress = CASE WHEN st = 'succeeded' THEN 1
                           WHEN j.kind = 'batch_predict' AND all_totals AND total > 0
                           THEN least(1, done::float8 / total)
                           ELSE j.progress END,
           finished_at = CASE WHEN n_busy = 0 THEN coalesce(j.finished_at, clock_timestamp()) END,
           pid = CASE WHEN n_busy = 0 THEN NULL ELSE j.pid END
     WHERE id = job;
    IF st = 'failed' AND j.status <> 'failed' THEN
        PERFORM ml._raise_alert('job_failed', 'error', j.project_id, j.owner,
                                format('%s job %s failed: %s', j.kind, job,
                                       coalesce(j.error, err, 'unknown error')),
                                jsonb_build_object('job_id', job, 'job_kind', j.kind,
                                                   'schedule_id', j.schedule_id,
                                                   'error', coalesce(j.error, err)));
    END IF;
    IF j.schedule_id IS NOT NULL THEN
        UPDATE ml.schedules s
           SET last_status = st, last_job_id = job,
               last_result = (SELECT jb.result FROM ml.jobs jb WHERE jb.id = job)
         WHERE s.id = j.schedule_id AND (s.last_job_id IS NULL OR s.last_job_id <= job);
    END IF;
    RETURN st;
END
$$;

-- Run by the launcher: a part left running by a worker that no longer
-- exists (the server restarted or crashed, or an earlier launcher's worker
-- died) and that was claimed before the launcher started (so none of its
-- own workers) is queued again from its checkpoint for a batch prediction,
-- up to 5 starts, and fails with reason otherwise.
CREATE FUNCTION ml._recover_jobs(before timestamptz, reason text) RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN
        UPDATE ml.job_parts p
           SET status = CASE WHEN j.kind = 'batch_predict' AND p.attempts < 5 THEN 'queued' ELSE 'failed' END,
               error = CASE WHEN j.kind = 'batch_predict' AND p.attempts < 5 THEN NULL ELSE reason END,
               finished_at = CASE WHEN j.kind = 'batch_predict' AND p.attempts < 5 THEN NULL ELSE clock_timestamp() END,
               pid = NULL
          FROM ml.jobs j
         WHERE j.id = p.job_id AND p.status = 'running' AND p.started_at < before
           AND (p.pid IS NULL OR p.pid NOT IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a
                                                WHERE a.backend_type = 'pgmaker job worker'))
        RETURNING p.job_id
    LOOP
        PERFORM ml._settle_job(r.job_id);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Queues a run of a schedule as its owner.
CREATE FUNCTION ml._queue_schedule_run(schedule bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    jid bigint;
BEGIN
    SELECT sc.id, sc.kind, sc.project_id, sc.source, sc.options, sc.owner, sc.search_path, p.name AS project INTO s
      FROM ml.schedules sc JOIN ml.projects p ON p.id = sc.project_id
     WHERE sc.id = schedule;
    INSERT INTO ml.jobs (kind, project_id, schedule_id, args, owner)
    VALUES (CASE s.kind WHEN 'monitor' THEN 'monitor' ELSE 'train' END, s.project_id, s.id,
            jsonb_build_object('project', s.project, 'source', s.source, 'options', s.options,
                               'search_path', s.search_path), s.owner)
    RETURNING id INTO jid;
    INSERT INTO ml.job_parts (job_id, part) VALUES (jid, 0);
    UPDATE ml.schedules SET last_run = now(), last_job_id = jid, last_status = 'queued' WHERE id = schedule;
    RETURN jid;
END
$$;

-- Queues a run of every enabled schedule that is due and moves its next run
-- past now (runs missed while the server was down are not made up); a run
-- still queued or running is not doubled.
CREATE FUNCTION ml._queue_due_schedules() RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    n int := 0;
BEGIN
    FOR s IN SELECT sc.id, sc.next_run, sc.every FROM ml.schedules sc
              WHERE sc.enabled AND sc.next_run <= now()
              ORDER BY sc.next_run FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE ml.schedules
           SET next_run = s.next_run
                          + s.every * (floor(extract(epoch FROM now() - s.next_run) / extract(epoch FROM s.every)) + 1)
         WHERE id = s.id;
        IF NOT EXISTS (SELECT 1 FROM ml.jobs j WHERE j.schedule_id = s.id AND j.status IN ('queued', 'running')) THEN
            PERFORM ml._queue_schedule_run(s.id);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

COMMENT ON FUNCTION ml._settle_job(bigint) IS 'Sets a job''s status, progress and end from its parts (internal, for the workers).';
COMMENT ON FUNCTION ml._recover_jobs(timestamptz, text) IS 'Requeues or fails the parts that workers which no longer exist left running (internal, for the launcher).';
COMMENT ON FUNCTION ml._queue_schedule_run(bigint) IS 'Queues a run of a schedule as its owner (internal).';
COMMENT ON FUNCTION ml._queue_due_schedules() IS 'Queues the runs of due schedules and moves their next run (internal, for the launcher).';

REVOKE EXECUTE ON FUNCTION ml._settle_job(bigint), ml._recover_jobs(timestamptz, text), ml._queue_schedule_run(bigint),
    ml._queue_due_schedules() FROM PUBLIC;
