-- src/label/labeling.sql
-- Labeling jobs: items of a source handed to people to label, a batch at
-- a time, chosen at random or where a project's live model is least sure
-- (active learning); gold items with known answers measure each labeler;
-- answers consolidated by majority or by a vote weighted with each
-- labeler's accuracy on the gold items.
--
-- The functions run as the caller.  The tables have row-level security:
-- members of a job's owner role hand out and submit its tasks and read
-- everything about it; nobody else sees it.

CREATE TABLE ml.labeling_jobs (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    owner             regrole NOT NULL DEFAULT current_user::regrole,
    source            text NOT NULL,
    key               text NOT NULL,
    labels            text[],
    labelers_per_item int NOT NULL CHECK (labelers_per_item BETWEEN 1 AND 100),
    batch_size        int NOT NULL CHECK (batch_size >= 1),
    strategy          text NOT NULL CHECK (strategy IN ('random', 'least_confident', 'margin', 'entropy')),
    project           text,
    gold_rate         float8 NOT NULL CHECK (gold_rate BETWEEN 0 AND 1),
    task_timeout      interval NOT NULL,
    seed              bigint NOT NULL,
    batches           int NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ml.labeling_jobs IS 'Labeling jobs (ml.create_labeling_job): the source and its key, the allowed labels, labelers per item, batch size, sampling strategy and its project, gold rate, task timeout; batches counts the batches opened.';

CREATE TABLE ml.label_items (
    job_id   bigint NOT NULL REFERENCES ml.labeling_jobs (id) ON DELETE CASCADE,
    key      text NOT NULL,
    item     jsonb NOT NULL,
    gold     text,
    batch    int,
    priority float8 NOT NULL,
    assigned int NOT NULL DEFAULT 0,
    answers  int NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX label_items_open ON ml.label_items (job_id, batch, priority) WHERE gold IS NULL;
COMMENT ON TABLE ml.label_items IS 'The items of a labeling job, copied from its source when the job was created (item: the row as JSON); gold: the known answer of a gold item; batch: the batch that opened it (NULL: still in the pool); assigned: open or answered tasks.';

CREATE TABLE ml.label_tasks (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL,
    key          text NOT NULL,
    labeler      text NOT NULL,
    gold         boolean NOT NULL,
    assigned_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    label        text,
    submitted_at timestamptz,
    CONSTRAINT label_tasks_once UNIQUE (job_id, key, labeler),
    FOREIGN KEY (job_id, key) REFERENCES ml.label_items (job_id, key) ON DELETE CASCADE
);
CREATE INDEX label_tasks_open ON ml.label_tasks (job_id, assigned_at) WHERE label IS NULL;
CREATE INDEX label_tasks_of_labeler ON ml.label_tasks (job_id, labeler);
COMMENT ON TABLE ml.label_tasks IS 'One item handed to one labeler (ml.next_label_task) and, once submitted, the label given.';

CREATE TABLE ml.label_batches (
    job_id    bigint NOT NULL REFERENCES ml.labeling_jobs (id) ON DELETE CASCADE,
    batch     int NOT NULL,
    items     int NOT NULL,
    strategy  text NOT NULL,
    model_id  bigint,
    opened_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, batch)
);
COMMENT ON TABLE ml.label_batches IS 'Each batch a labeling job opened: its size, the strategy that chose it (random when the project had no live model yet) and the model that scored it.';

ALTER TABLE ml.labeling_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.label_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.label_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.label_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY labeling_jobs_of_members ON ml.labeling_jobs
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY label_items_of_members ON ml.label_items
    USING (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'));
CREATE POLICY label_tasks_of_members ON ml.label_tasks
    USING (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'));
CREATE POLICY label_batches_of_members ON ml.label_batches
    USING (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role((SELECT j.owner FROM ml.labeling_jobs j WHERE j.id = job_id), 'USAGE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON ml.labeling_jobs, ml.label_items, ml.label_tasks, ml.label_batches TO PUBLIC;
GRANT USAGE ON SEQUENCE ml.labeling_jobs_id_seq, ml.label_tasks_id_seq TO PUBLIC;

-- The job of a name, as its members see it.
CREATE FUNCTION ml._labeling_job(name text) RETURNS ml.labeling_jobs
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.labeling_jobs;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'labeling job name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO j FROM ml.labeling_jobs lj WHERE lj.name = _labeling_job.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'labeling job "%" does not exist', name USING ERRCODE = 'undefined_object',
            HINT = 'A job is visible only to members of the role that created it.';
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION ml._labeling_job(text) IS 'The labeling job of a name, or an error (internal).';

-- An integer option from lo to hi, or NULL when absent.
CREATE FUNCTION ml._labeling_int_option(o jsonb, key text, lo int, hi int) RETURNS int
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT o ? key THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(o->key) <> 'number' OR (o->>key)::numeric NOT BETWEEN lo AND hi
       OR (o->>key)::numeric % 1 <> 0 THEN
        RAISE EXCEPTION 'labeling option "%" must be an integer from % to %', key, lo, hi
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (o->>key)::int;
END
$$;
COMMENT ON FUNCTION ml._labeling_int_option(jsonb, text, int, int) IS 'An integer labeling option within bounds (internal).';

CREATE FUNCTION ml.create_labeling_job(name text, source text, key text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    o jsonb := coalesce(options, '{}');
    k text;
    labels text[];
    per_item int := 1;
    batch_size int := 100;
    strategy text := 'random';
    project text;
    ptask text;
    gold jsonb := '{}';
    gold_rate float8;
    timeout interval := '1 hour';
    seed bigint := 0;
    q text;
    id bigint;
    n bigint;
    bad text;
BEGIN
    IF name IS NULL OR source IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'name, source and key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'labeling job name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(o) <> 'object' THEN
        RAISE EXCEPTION 'labeling options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(o) LOOP
        IF k NOT IN ('labels', 'labelers_per_item', 'batch_size', 'strategy', 'project', 'gold',
                     'gold_rate', 'task_timeout', 'seed') THEN
            RAISE EXCEPTION 'unknown labeling option "%"', k USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Options are labels, labelers_per_item, batch_size, strategy, project, gold, gold_rate, task_timeout and seed.';
        END IF;
    END LOOP;

    IF o ? 'labels' THEN
        IF jsonb_typeof(o->'labels') <> 'array' OR jsonb_array_length(o->'labels') < 2
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(o->'labels') e
                       WHERE jsonb_typeof(e) NOT IN ('string', 'number', 'boolean') OR e #>> '{}' = '') THEN
            RAISE EXCEPTION 'labeling option "labels" must be an array of at least 2 non-empty labels'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        labels := ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(o->'labels') e);
        IF (SELECT count(DISTINCT l) FROM unnest(labels) l) <> cardinality(labels) THEN
            RAISE EXCEPTION 'labeling option "labels" lists a label twice' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    per_item := coalesce(ml._labeling_int_option(o, 'labelers_per_item', 1, 100), per_item);
    batch_size := coalesce(ml._labeling_int_option(o, 'batch_size', 1, 1000000), batch_size);
    IF o ? 'strategy' THEN
        strategy := o->>'strategy';
        IF jsonb_typeof(o->'strategy') <> 'string'
           OR strategy NOT IN ('random', 'least_confident', 'margin', 'entropy') THEN
            RAISE EXCEPTION 'unknown labeling strategy %', o->'strategy' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Strategies are random, least_confident, margin and entropy.';
        END IF;
    END IF;
    IF o ? 'project' THEN
        project := o->>'project';
        IF jsonb_typeof(o->'project') <> 'string' OR project = '' THEN
            RAISE EXCEPTION 'labeling option "project" must be a project name' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- a project not trained yet is fine: batches are random until it has a live model
        SELECT p.task INTO ptask FROM ml.projects p WHERE p.name = project;
        IF FOUND AND ptask IS DISTINCT FROM 'classification' THEN
            RAISE EXCEPTION 'uncertainty sampling needs a classification project, and "%" is %', project,
                coalesce(ptask, 'not trained yet') USING ERRCODE = 'wrong_object_type';
        END IF;
    END IF;
    IF strategy <> 'random' AND project IS NULL THEN
        RAISE EXCEPTION 'labeling strategy % needs option "project", whose live model scores the items', strategy
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF o ? 'gold' THEN
        IF jsonb_typeof(o->'gold') <> 'object' THEN
            RAISE EXCEPTION 'labeling option "gold" must be an object of keys and their known labels'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        gold := o->'gold';
        SELECT g.key INTO bad FROM jsonb_each(gold) g
         WHERE jsonb_typeof(g.value) NOT IN ('string', 'number', 'boolean') OR g.value #>> '{}' = ''
            OR (labels IS NOT NULL AND NOT (g.value #>> '{}') = ANY (labels)) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'gold item "%" has label %, which is not one of the labels', bad, gold->bad
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    gold_rate := CASE WHEN gold = '{}' THEN 0 ELSE 0.1 END;
    IF o ? 'gold_rate' THEN
        IF jsonb_typeof(o->'gold_rate') <> 'number' OR (o->>'gold_rate')::float8 NOT BETWEEN 0 AND 1 THEN
            RAISE EXCEPTION 'labeling option "gold_rate" must be a number from 0 to 1' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        gold_rate := (o->>'gold_rate')::float8;
    END IF;
    IF o ? 'task_timeout' THEN
        BEGIN
            timeout := (o->>'task_timeout')::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            timeout := NULL;
        END;
        IF timeout IS NULL OR timeout <= interval '0' THEN
            RAISE EXCEPTION 'labeling option "task_timeout" must be a positive interval, not %', o->'task_timeout'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF o ? 'seed' THEN
        IF jsonb_typeof(o->'seed') <> 'number' OR (o->>'seed')::numeric % 1 <> 0
           OR abs((o->>'seed')::numeric) > 9007199254740992 THEN
            RAISE EXCEPTION 'labeling option "seed" must be an integer' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        seed := (o->>'seed')::bigint;
    END IF;
    IF EXISTS (SELECT 1 FROM ml.labeling_jobs lj WHERE lj.name = create_labeling_job.name) THEN
        RAISE EXCEPTION 'labeling job "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;

    q := ml._source_query(source);
    PERFORM ml._column_type(q, key);   -- an error when the source lacks it

    INSERT INTO ml.labeling_jobs (name, source, key, labels, labelers_per_item, batch_size, strategy, project,
                                  gold_rate, task_timeout, seed)
    VALUES (name, source, key, labels, per_item, batch_size, strategy, project, gold_rate, timeout, seed)
    RETURNING labeling_jobs.id INTO id;

    -- the items, read with the caller's rights; the priority of the random
    -- strategy is a hash of the key, so a seed fixes the order
    EXECUTE format($f$
        INSERT INTO ml.label_items (job_id, key, item, gold, priority)
        SELECT $1, src.%1$I::text, pg_catalog.to_jsonb(src), $2 OPERATOR(pg_catalog.->>) src.%1$I::text,
               pg_catalog.hashtextextended(src.%1$I::text, $3)::float8
          FROM (%2$s) src$f$, key, q)
        USING id, gold, seed;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'the source of labeling job "%" has no rows', name USING ERRCODE = 'no_data_found';
    END IF;
    SELECT g.key INTO bad FROM jsonb_each(gold) g
     WHERE NOT EXISTS (SELECT 1 FROM ml.label_items i WHERE i.job_id = id AND i.key = g.key) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'gold item "%" is not a key of the source', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN id;
EXCEPTION
    WHEN not_null_violation THEN
        RAISE EXCEPTION 'key column "%" has NULLs', key USING ERRCODE = 'null_value_not_allowed';
    WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS bad = CONSTRAINT_NAME;
        IF bad = 'labeling_jobs_name_key' THEN
            -- a job of this name that the caller may not see, or one made meanwhile
            RAISE EXCEPTION 'labeling job "%" already exists', name USING ERRCODE = 'duplicate_object';
        END IF;
        RAISE EXCEPTION 'key column "%" has duplicate values', key USING ERRCODE = 'unique_violation';
END
$$;
COMMENT ON FUNCTION ml.create_labeling_job(text, text, text, jsonb) IS
'Creates a labeling job over the rows of a table, view or query, identified by a key column; options: labels, labelers_per_item, batch_size, strategy (random, least_confident, margin, entropy) with project, gold (key: known label), gold_rate, task_timeout, seed. Returns its id.';

CREATE FUNCTION ml.drop_labeling_job(name text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    j ml.labeling_jobs := ml._labeling_job(name);
BEGIN
    DELETE FROM ml.labeling_jobs WHERE id = j.id;
END
$$;
COMMENT ON FUNCTION ml.drop_labeling_job(text) IS 'Drops a labeling job with its items, tasks and answers.';

-- Opens the next batch of a job from its pool; false when the pool is
-- empty.  The caller holds the job's row lock.
CREATE FUNCTION ml._open_label_batch(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.labeling_jobs;
    mid bigint;
    used text;
    n int;
BEGIN
    SELECT * INTO STRICT j FROM ml.labeling_jobs lj WHERE lj.id = job_id;
    used := j.strategy;
    IF j.strategy <> 'random' THEN
        SELECT d.model_id INTO mid FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
         WHERE p.name = j.project ORDER BY d.id DESC LIMIT 1;
        IF mid IS NULL THEN
            used := 'random';           -- no live model yet: the first batch is a random one
        END IF;
    END IF;

    IF used = 'random' THEN
        UPDATE ml.label_items i SET batch = j.batches + 1
          FROM (SELECT c.key FROM ml.label_items c
                 WHERE c.job_id = j.id AND c.batch IS NULL AND c.gold IS NULL
                 ORDER BY c.priority, c.key LIMIT j.batch_size) pick
         WHERE i.job_id = j.id AND i.key = pick.key;
    ELSE
        -- uncertainty of the live model on every item of the pool: the most
        -- uncertain open first (priority ascending)
        UPDATE ml.label_items i SET batch = j.batches + 1, priority = pick.priority
          FROM (SELECT s.key, -s.u AS priority
                  FROM (SELECT c.key,
                               CASE j.strategy
                                 WHEN 'least_confident' THEN
                                     1 - (SELECT max(p) FROM unnest(pr.proba) p)
                                 WHEN 'margin' THEN
                                     -(SELECT coalesce(max(p) - (SELECT p2 FROM unnest(pr.proba) p2 ORDER BY p2 DESC OFFSET 1 LIMIT 1), 1)
                                         FROM unnest(pr.proba) p)
                                 ELSE
                                     -(SELECT coalesce(sum(p * ln(p)), 0) FROM unnest(pr.proba) p WHERE p > 0)
                               END AS u
                          FROM ml.label_items c,
                               LATERAL (SELECT ml.predict_proba(mid, c.item) AS proba) pr
                         WHERE c.job_id = j.id AND c.batch IS NULL AND c.gold IS NULL) s
                 ORDER BY s.u DESC, s.key LIMIT j.batch_size) pick
         WHERE i.job_id = j.id AND i.key = pick.key;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN false;
    END IF;
    UPDATE ml.labeling_jobs SET batches = batches + 1 WHERE id = j.id;
    INSERT INTO ml.label_batches (job_id, batch, items, strategy, model_id)
    VALUES (j.id, j.batches + 1, n, used, CASE WHEN used = 'random' THEN NULL ELSE mid END);
    RETURN true;
END
$$;
COMMENT ON FUNCTION ml._open_label_batch(bigint) IS 'Opens the next batch of a labeling job (internal).';

-- The labeler's unanswered task of a job, if any.
CREATE FUNCTION ml._open_label_task(job_id bigint, labeler text)
RETURNS TABLE (task_id bigint, key text, item jsonb)
LANGUAGE sql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lt.id, lt.key, i.item FROM ml.label_tasks lt
      JOIN ml.label_items i ON i.job_id = lt.job_id AND i.key = lt.key
     WHERE lt.job_id = $1 AND lt.labeler = $2 AND lt.label IS NULL
     ORDER BY lt.id LIMIT 1
$$;
COMMENT ON FUNCTION ml._open_label_task(bigint, text) IS 'The unanswered task of a labeler in a job (internal).';

CREATE FUNCTION ml.next_label_task(job text, labeler text)
RETURNS TABLE (task_id bigint, key text, item jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.labeling_jobs := ml._labeling_job(job);
    r record;
    attempt int := 0;
    k text;
    t bigint;
    n_tasks bigint;
    n_gold bigint;
BEGIN
    IF labeler IS NULL OR labeler = '' THEN
        RAISE EXCEPTION 'labeler must not be NULL or empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- tasks left open past the timeout go back to the pool of their batch;
    -- a task or item another session holds is left for a later call, so
    -- that reclaiming never waits (and never deadlocks)
    FOR r IN SELECT lt.id, lt.key, lt.gold FROM ml.label_tasks lt
              WHERE lt.job_id = j.id AND lt.label IS NULL
                AND lt.assigned_at < clock_timestamp() - j.task_timeout
              FOR UPDATE SKIP LOCKED LOOP
        IF NOT r.gold THEN
            PERFORM FROM ml.label_items i WHERE i.job_id = j.id AND i.key = r.key FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;
            UPDATE ml.label_items i SET assigned = i.assigned - 1 WHERE i.job_id = j.id AND i.key = r.key;
        END IF;
        DELETE FROM ml.label_tasks lt WHERE lt.id = r.id;
    END LOOP;

    -- a labeler who asks again before answering gets the same task
    RETURN QUERY SELECT * FROM ml._open_label_task(j.id, labeler);
    IF FOUND THEN
        RETURN;
    END IF;

    -- a gold item when the labeler's share of gold tasks is below gold_rate
    IF j.gold_rate > 0 THEN
        SELECT count(*), count(*) FILTER (WHERE lt.gold) INTO n_tasks, n_gold
          FROM ml.label_tasks lt WHERE lt.job_id = j.id AND lt.labeler = next_label_task.labeler;
        IF n_gold < ceil(j.gold_rate * (n_tasks + 1)) THEN
            SELECT i.key INTO k FROM ml.label_items i
             WHERE i.job_id = j.id AND i.gold IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM ml.label_tasks lt WHERE lt.job_id = j.id AND lt.key = i.key
                                  AND lt.labeler = next_label_task.labeler)
             ORDER BY i.priority, i.key LIMIT 1;
            IF FOUND THEN
                INSERT INTO ml.label_tasks (job_id, key, labeler, gold) VALUES (j.id, k, labeler, true)
                ON CONFLICT ON CONSTRAINT label_tasks_once DO NOTHING
                RETURNING id INTO t;
                IF t IS NOT NULL THEN
                    RETURN QUERY SELECT t, k, i.item FROM ml.label_items i WHERE i.job_id = j.id AND i.key = k;
                    RETURN;
                END IF;
                -- the same labeler, in another session, took it meanwhile
                RETURN QUERY SELECT * FROM ml._open_label_task(j.id, labeler);
                RETURN;
            END IF;
        END IF;
    END IF;

    -- The first open item this labeler has not had that still wants
    -- labelers; items another session is assigning right now are skipped.
    -- When there is none, the next batch is opened, one session at a time
    -- (the job's row lock); a session that waited for the lock looks again
    -- first, for the batch another one opened meanwhile.  With the pool
    -- empty, it waits for the items others hold: they may still want a
    -- labeler once those sessions end.
    LOOP
        attempt := attempt + 1;
        IF attempt < 6 THEN
            SELECT i.key INTO k FROM ml.label_items i
             WHERE i.job_id = j.id AND i.gold IS NULL AND i.batch IS NOT NULL
               AND i.assigned < j.labelers_per_item
               AND NOT EXISTS (SELECT 1 FROM ml.label_tasks lt WHERE lt.job_id = j.id AND lt.key = i.key
                                  AND lt.labeler = next_label_task.labeler)
             ORDER BY i.batch, i.priority, i.key
             LIMIT 1 FOR UPDATE SKIP LOCKED;
        ELSE
            SELECT i.key INTO k FROM ml.label_items i
             WHERE i.job_id = j.id AND i.gold IS NULL AND i.batch IS NOT NULL
               AND i.assigned < j.labelers_per_item
               AND NOT EXISTS (SELECT 1 FROM ml.label_tasks lt WHERE lt.job_id = j.id AND lt.key = i.key
                                  AND lt.labeler = next_label_task.labeler)
             ORDER BY i.batch, i.priority, i.key
             LIMIT 1 FOR UPDATE;
        END IF;
        IF FOUND THEN
            INSERT INTO ml.label_tasks (job_id, key, labeler, gold) VALUES (j.id, k, labeler, false)
            ON CONFLICT ON CONSTRAINT label_tasks_once DO NOTHING
            RETURNING id INTO t;
            IF t IS NULL THEN
                -- the same labeler, in another session, took it meanwhile
                RETURN QUERY SELECT * FROM ml._open_label_task(j.id, labeler);
                RETURN;
            END IF;
            UPDATE ml.label_items i SET assigned = i.assigned + 1 WHERE i.job_id = j.id AND i.key = k;
            RETURN QUERY SELECT t, k, i.item FROM ml.label_items i WHERE i.job_id = j.id AND i.key = k;
            RETURN;
        END IF;
        EXIT WHEN attempt >= 6;
        IF attempt % 2 = 1 THEN
            SELECT * INTO j FROM ml.labeling_jobs lj WHERE lj.id = j.id FOR UPDATE;
        ELSIF NOT ml._open_label_batch(j.id) THEN
            -- the pool is empty: one last look, waiting for held items
            attempt := 5;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ml.next_label_task(text, text) IS
'Hands the labeler the next item of a labeling job (the same one again until it is answered; no row when nothing is left for this labeler); safe under concurrency: an item never gets more labelers than labelers_per_item.';

CREATE FUNCTION ml.submit_label(task_id bigint, labeler text, label text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t ml.label_tasks;
    j ml.labeling_jobs;
BEGIN
    IF task_id IS NULL OR labeler IS NULL OR label IS NULL THEN
        RAISE EXCEPTION 'task_id, labeler and label must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO t FROM ml.label_tasks lt WHERE lt.id = task_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'label task % does not exist', task_id USING ERRCODE = 'undefined_object',
            HINT = 'A task left open past the job''s task_timeout goes back to the pool.';
    END IF;
    IF t.labeler <> labeler THEN
        RAISE EXCEPTION 'label task % was handed to another labeler', task_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF t.label IS NOT NULL THEN
        RAISE EXCEPTION 'label task % was already answered', task_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO j FROM ml.labeling_jobs lj WHERE lj.id = t.job_id;
    IF label = '' OR (j.labels IS NOT NULL AND NOT label = ANY (j.labels)) THEN
        RAISE EXCEPTION 'label "%" is not one of the labels of job "%"', label, j.name
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Labels: %s.', array_to_string(j.labels, ', '));
    END IF;
    UPDATE ml.label_tasks lt SET label = submit_label.label, submitted_at = clock_timestamp() WHERE lt.id = task_id;
    UPDATE ml.label_items i SET answers = i.answers + 1 WHERE i.job_id = t.job_id AND i.key = t.key;
END
$$;
COMMENT ON FUNCTION ml.submit_label(bigint, text, text) IS 'Records the label a labeler gave for a task.';

CREATE FUNCTION ml.labeler_accuracy(job text)
RETURNS TABLE (labeler text, answers bigint, gold_answers bigint, gold_correct bigint, accuracy float8, weight float8)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.labeling_jobs := ml._labeling_job(job);
BEGIN
    -- accuracy on gold items, shrunk toward the pooled accuracy of every
    -- labeler (weight of 2 answers), so one gold answer is not a verdict;
    -- the vote weight ln(acc (K - 1) / (1 - acc)) is that of a labeler
    -- who errs uniformly over the other K - 1 labels, 0 at chance
    RETURN QUERY
    WITH per AS (
        SELECT lt.labeler, count(*) AS answers,
               count(*) FILTER (WHERE lt.gold) AS g,
               count(*) FILTER (WHERE lt.gold AND lt.label = i.gold) AS c
          FROM ml.label_tasks lt JOIN ml.label_items i ON i.job_id = lt.job_id AND i.key = lt.key
         WHERE lt.job_id = j.id AND lt.label IS NOT NULL
         GROUP BY lt.labeler),
    pooled AS (SELECT (sum(c) + 1)::float8 / (sum(g) + 2) AS acc FROM per),
    k AS (SELECT greatest(2, coalesce(cardinality(j.labels),
                  (SELECT count(DISTINCT lt.label) FROM ml.label_tasks lt WHERE lt.job_id = j.id)))::float8 AS k),
    est AS (SELECT per.*, least(0.999, greatest(0.001, (per.c + 2 * pooled.acc) / (per.g + 2))) AS acc
              FROM per, pooled)
    SELECT est.labeler, est.answers, est.g, est.c, est.acc,
           greatest(0, ln(est.acc * (k.k - 1) / (1 - est.acc)))
      FROM est, k
     ORDER BY est.labeler;
END
$$;
COMMENT ON FUNCTION ml.labeler_accuracy(text) IS
'Per labeler of a job: answers, gold answers and how many were right, the estimated accuracy and the weight of the labeler''s vote.';

CREATE FUNCTION ml.labeled(job text, method text DEFAULT 'auto')
RETURNS TABLE (key text, label text, confidence float8, n_answers int)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j ml.labeling_jobs := ml._labeling_job(job);
    m text := method;
BEGIN
    IF m IS NULL OR m NOT IN ('auto', 'majority', 'weighted') THEN
        RAISE EXCEPTION 'unknown consolidation method "%"', m USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Methods are majority, weighted and auto (weighted when gold items were answered).';
    END IF;
    IF m = 'auto' THEN
        m := CASE WHEN EXISTS (SELECT 1 FROM ml.label_tasks lt WHERE lt.job_id = j.id AND lt.gold AND lt.label IS NOT NULL)
                  THEN 'weighted' ELSE 'majority' END;
    END IF;

    RETURN QUERY
    WITH answers AS (
        SELECT lt.key, lt.label, lt.labeler
          FROM ml.label_tasks lt
         WHERE lt.job_id = j.id AND NOT lt.gold AND lt.label IS NOT NULL),
    w AS (SELECT a.labeler, CASE WHEN m = 'weighted' THEN a.weight ELSE 1 END AS weight
            FROM ml.labeler_accuracy(job) a),
    votes AS (
        SELECT a.key, a.label, sum(w.weight) AS score, count(*) AS n
          FROM answers a JOIN w ON w.labeler = a.labeler
         GROUP BY a.key, a.label),
    k AS (SELECT greatest(2, coalesce(cardinality(j.labels),
                  (SELECT count(DISTINCT lt.label) FROM ml.label_tasks lt WHERE lt.job_id = j.id)))::float8 AS k),
    per_key AS (
        SELECT v.*, sum(v.n) OVER (PARTITION BY v.key) AS total,
               max(v.score) OVER (PARTITION BY v.key) AS top,
               count(*) OVER (PARTITION BY v.key) AS voted
          FROM votes v),
    ranked AS (
        SELECT v.*,
               row_number() OVER (PARTITION BY v.key
                                  ORDER BY v.score DESC, v.n DESC,
                                           array_position(j.labels, v.label), v.label) AS r,
               -- the posterior of the label: exp(score) over the sum for
               -- every label, labels without votes counting exp(0) each
               exp(v.score - v.top)
                 / (sum(exp(v.score - v.top)) OVER (PARTITION BY v.key)
                    + greatest(k.k - v.voted, 0) * exp(-v.top)) AS posterior
          FROM per_key v, k)
    SELECT rk.key, rk.label,
           CASE WHEN m = 'majority' THEN rk.n::float8 / rk.total ELSE rk.posterior END,
           rk.total::int
      FROM ranked rk WHERE rk.r = 1
    UNION ALL
    SELECT i.key, i.gold, 1.0::float8, i.answers
      FROM ml.label_items i WHERE i.job_id = j.id AND i.gold IS NOT NULL;
END
$$;
COMMENT ON FUNCTION ml.labeled(text, text) IS
'The consolidated label of every answered item of a labeling job (gold items with their known label): majority vote with the share of agreeing answers as confidence, or a vote weighted by each labeler''s gold accuracy with the posterior probability as confidence; auto is weighted when gold items were answered.';

CREATE VIEW ml.labeling_status AS
SELECT j.name AS job, j.strategy, j.labelers_per_item, j.batches,
       count(i.key) FILTER (WHERE i.gold IS NULL) AS items,
       count(i.key) FILTER (WHERE i.gold IS NULL AND i.batch IS NULL) AS in_pool,
       count(i.key) FILTER (WHERE i.gold IS NULL AND i.answers >= j.labelers_per_item) AS done,
       count(i.key) FILTER (WHERE i.gold IS NOT NULL) AS gold_items,
       coalesce(sum(i.answers), 0) AS answers,
       (SELECT count(DISTINCT lt.labeler) FROM ml.label_tasks lt WHERE lt.job_id = j.id) AS labelers
  FROM ml.labeling_jobs j LEFT JOIN ml.label_items i ON i.job_id = j.id
 GROUP BY j.id;
-- read with the caller's rights, so the tables' row-level security applies
ALTER VIEW ml.labeling_status SET (security_invoker = true);
COMMENT ON VIEW ml.labeling_status IS 'Per labeling job: items, items still in the pool, items with all their answers, gold items, answers and labelers.';
GRANT SELECT ON ml.labeling_status TO PUBLIC;

-- the labels people gave are data: pg_dump keeps them
SELECT pg_catalog.pg_extension_config_dump('ml.labeling_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('ml.labeling_jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.label_items', '');
SELECT pg_catalog.pg_extension_config_dump('ml.label_tasks', '');
SELECT pg_catalog.pg_extension_config_dump('ml.label_tasks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.label_batches', '');
