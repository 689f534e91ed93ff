-- Labeling jobs: handing out items, gold items, consolidation against the
-- truth with three simulated labelers, active learning against random
-- sampling, expiry of tasks, bad input and privileges.
CREATE TABLE lab_bc AS SELECT row_number() OVER () AS id, * FROM breast_cancer;

-- ---------- handing out and answering ----------
SELECT ml.create_labeling_job('small', 'SELECT id, mean_radius, diagnosis FROM lab_bc WHERE id <= 6', 'id',
       '{"labels": ["benign", "malignant"], "batch_size": 2, "labelers_per_item": 2, "seed": 1}') > 0 AS created;
SELECT name, labels, labelers_per_item, batch_size, strategy, gold_rate, task_timeout, batches
  FROM ml.labeling_jobs WHERE name = 'small';
SELECT key, item FROM ml.label_items WHERE job_id = (SELECT id FROM ml.labeling_jobs WHERE name = 'small') ORDER BY key::int;
-- the first call opens batch 1; asking again before answering gives the same task
SELECT key FROM ml.next_label_task('small', 'ann');
SELECT key FROM ml.next_label_task('small', 'ann');
SELECT ml.submit_label(task_id, 'ann', 'malignant') FROM ml.next_label_task('small', 'ann');
SELECT key FROM ml.next_label_task('small', 'ann');
SELECT ml.submit_label(task_id, 'ann', 'benign') FROM ml.next_label_task('small', 'ann');
-- ann has had both items of batch 1: her next call opens batch 2
SELECT key FROM ml.next_label_task('small', 'ann');
SELECT batch, items, strategy FROM ml.label_batches WHERE job_id = (SELECT id FROM ml.labeling_jobs WHERE name = 'small') ORDER BY batch;
-- bob gets batch 1's items first (two labelers per item)
SELECT ml.submit_label(task_id, 'bob', 'malignant') FROM ml.next_label_task('small', 'bob');
SELECT ml.submit_label(task_id, 'bob', 'malignant') FROM ml.next_label_task('small', 'bob');
SELECT t.key, t.labeler, t.label FROM ml.label_tasks t JOIN ml.labeling_jobs j ON j.id = t.job_id
 WHERE j.name = 'small' ORDER BY t.id;
SELECT * FROM ml.labeled('small') ORDER BY key;
SELECT job, items, in_pool, done, gold_items, answers, labelers FROM ml.labeling_status WHERE job = 'small';
-- every item labeled twice: then nothing is left
DO $$
DECLARE
    t record;
    l text;
BEGIN
    FOR i IN 1..4 LOOP
        FOREACH l IN ARRAY ARRAY['ann', 'bob'] LOOP
            SELECT * INTO t FROM ml.next_label_task('small', l);
            PERFORM ml.submit_label(t.task_id, l, 'benign');
        END LOOP;
    END LOOP;
END
$$;
SELECT count(*) AS tasks_left FROM ml.next_label_task('small', 'ann');
SELECT count(*) AS tasks_left FROM ml.next_label_task('small', 'carl');
SELECT job, items, in_pool, done, answers FROM ml.labeling_status WHERE job = 'small';

-- ---------- three simulated labelers of different accuracy ----------
-- Each labeler gives the true diagnosis with probability 0.85, 0.80 and
-- 0.75 (else the other one); every item gets all three; 81 gold items
-- with known answers measure them.
SELECT ml.create_labeling_job('crowd', 'lab_bc', 'id',
       jsonb_build_object('labels', ARRAY['benign', 'malignant'], 'labelers_per_item', 3, 'batch_size', 50,
                          'gold', (SELECT jsonb_object_agg(id::text, diagnosis) FROM lab_bc WHERE id % 7 = 0),
                          'gold_rate', 0.15, 'seed', 2)) > 0 AS created;
CREATE PROCEDURE crowd_work(job text) LANGUAGE plpgsql AS $$
DECLARE
    acc float8[] := ARRAY[0.85, 0.80, 0.75];
    t record;
    busy boolean := true;
BEGIN
    WHILE busy LOOP
        busy := false;
        FOR l IN 1..3 LOOP
            SELECT * INTO t FROM ml.next_label_task(job, 'labeler' || l);
            CONTINUE WHEN NOT FOUND;
            busy := true;
            PERFORM ml.submit_label(t.task_id, 'labeler' || l,
                CASE WHEN random() < acc[l] THEN t.item->>'diagnosis'
                     WHEN t.item->>'diagnosis' = 'benign' THEN 'malignant' ELSE 'benign' END);
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
SELECT setseed(0.3);
CALL crowd_work('crowd');
SELECT job, items, in_pool, done, gold_items, answers, labelers FROM ml.labeling_status WHERE job = 'crowd';
SELECT labeler, answers, gold_answers, gold_correct, round(accuracy::numeric, 3) AS accuracy, round(weight::numeric, 3) AS weight
  FROM ml.labeler_accuracy('crowd');
-- accuracy against the truth, on the items that were not gold
CREATE TABLE crowd_scores AS
SELECT 'labeler' || l AS who, avg((t.label = b.diagnosis)::int) AS accuracy
  FROM ml.label_tasks t JOIN lab_bc b ON b.id::text = t.key, generate_series(1, 3) l
 WHERE t.job_id = (SELECT id FROM ml.labeling_jobs WHERE name = 'crowd') AND NOT t.gold AND t.labeler = 'labeler' || l
 GROUP BY l
UNION ALL
SELECT 'majority', avg((c.label = b.diagnosis)::int) FROM ml.labeled('crowd', 'majority') c JOIN lab_bc b ON b.id::text = c.key WHERE b.id % 7 <> 0
UNION ALL
SELECT 'weighted', avg((c.label = b.diagnosis)::int) FROM ml.labeled('crowd', 'weighted') c JOIN lab_bc b ON b.id::text = c.key WHERE b.id % 7 <> 0;
SELECT who, round(accuracy, 3) AS accuracy FROM crowd_scores ORDER BY who;
SELECT (SELECT min(accuracy) FROM crowd_scores WHERE who IN ('majority', 'weighted'))
     > (SELECT max(accuracy) FROM crowd_scores WHERE who LIKE 'labeler%') AS consolidated_beats_best_labeler;
-- confidence: unanimous items are surer than split ones
SELECT n_answers, round(min(confidence)::numeric, 3) AS min_conf, round(max(confidence)::numeric, 3) AS max_conf, count(*)
  FROM ml.labeled('crowd', 'majority') GROUP BY n_answers ORDER BY n_answers;
SELECT round(avg(confidence) FILTER (WHERE c.label = b.diagnosis)::numeric, 3) > round(avg(confidence) FILTER (WHERE c.label <> b.diagnosis)::numeric, 3) AS right_labels_surer
  FROM ml.labeled('crowd', 'weighted') c JOIN lab_bc b ON b.id::text = c.key;
-- the consolidated labels train a model, and feed ground truth
SELECT algorithm FROM ml.train('crowd_model', $$SELECT b.mean_texture, b.worst_area, b.worst_concave_points, b.worst_smoothness, l.label
                                                 FROM ml.labeled('crowd') l JOIN lab_bc b ON b.id::text = l.key$$, 'label', 'logistic');
SELECT (ml.evaluate('crowd_model', 'SELECT mean_texture, worst_area, worst_concave_points, worst_smoothness, diagnosis AS label FROM lab_bc')->>'accuracy')::float8 > 0.9
       AS accurate_on_the_truth;
SELECT count(*) AS recorded FROM (SELECT ml.record_ground_truth('crowd_model', key, label) FROM ml.labeled('crowd')) s;

-- ---------- active learning against random sampling ----------
-- A perfect labeler labels ten items a round; after each round a logistic
-- model is trained on the labeled items and scored on a fixed hold-out
-- quarter.  least_confident opens each batch where the live model is
-- least sure; random opens them in a seeded random order.
CREATE VIEW lab_pool AS SELECT * FROM lab_bc WHERE id % 4 <> 0;
CREATE VIEW lab_holdout AS SELECT * FROM lab_bc WHERE id % 4 = 0;
CREATE TABLE al_curve (strategy text, labels int, accuracy float8);
CREATE PROCEDURE al_run(strategy text, rounds int) LANGUAGE plpgsql AS $$
DECLARE
    job text := 'al_' || strategy;
    t record;
    n int;
BEGIN
    PERFORM ml.create_labeling_job(job, 'lab_pool', 'id',
        jsonb_build_object('labels', ARRAY['benign', 'malignant'], 'batch_size', 10, 'seed', 3,
                           'strategy', strategy, 'project', job));
    FOR r IN 1..rounds LOOP
        FOR i IN 1..10 LOOP
            SELECT * INTO t FROM ml.next_label_task(job, 'oracle');
            PERFORM ml.submit_label(t.task_id, 'oracle', t.item->>'diagnosis');
        END LOOP;
        SELECT count(*) INTO n FROM ml.labeled(job);
        IF (SELECT count(DISTINCT label) FROM ml.labeled(job)) = 2 THEN
            PERFORM ml.train(job, format($q$SELECT b.mean_texture, b.worst_area, b.worst_concave_points, b.worst_smoothness, l.label AS diagnosis
                                              FROM ml.labeled(%L) l JOIN lab_bc b ON b.id::text = l.key$q$, job),
                             'diagnosis', 'logistic', test_size => 0, deploy => 'always');
            INSERT INTO al_curve VALUES (strategy, n, (ml.evaluate(job, 'lab_holdout')->>'accuracy')::float8);
        END IF;
        COMMIT;
    END LOOP;
END
$$;
CALL al_run('random', 12);
CALL al_run('least_confident', 12);
SELECT strategy, labels, round(accuracy::numeric, 3) AS accuracy FROM al_curve ORDER BY strategy, labels;
-- labels needed to reach 95% hold-out accuracy
SELECT strategy, min(labels) AS labels_to_95_percent FROM al_curve WHERE accuracy >= 0.95 GROUP BY strategy ORDER BY strategy;
SELECT (SELECT min(labels) FROM al_curve WHERE strategy = 'least_confident' AND accuracy >= 0.95)
     < (SELECT min(labels) FROM al_curve WHERE strategy = 'random' AND accuracy >= 0.95) AS active_learning_needs_fewer;
SELECT batch, strategy, model_id IS NOT NULL AS scored FROM ml.label_batches
 WHERE job_id = (SELECT id FROM ml.labeling_jobs WHERE name = 'al_least_confident') AND batch <= 3 ORDER BY batch;
-- with two labels, least_confident, margin and entropy rank items alike
SELECT ml.create_labeling_job('by_' || s, 'lab_pool', 'id',
       jsonb_build_object('batch_size', 10, 'strategy', s, 'project', 'al_least_confident')) > 0 AS created
  FROM unnest(ARRAY['least_confident', 'margin', 'entropy']) s;
SELECT s, array_agg(t.key::int ORDER BY t.key::int) = (SELECT array_agg(t2.key::int ORDER BY t2.key::int)
                                                 FROM generate_series(1, 10), ml.next_label_task('by_least_confident', 'x' || generate_series) t2) AS same_batch
  FROM unnest(ARRAY['margin', 'entropy']) s, generate_series(1, 10) g, ml.next_label_task('by_' || s, 'x' || g) t
 GROUP BY s ORDER BY s;

-- ---------- expiry ----------
SELECT ml.create_labeling_job('slow', 'SELECT id FROM lab_bc WHERE id <= 3', 'id', '{"task_timeout": "1 second", "batch_size": 3}') > 0 AS created;
SELECT task_id AS slow_task, key AS slow_key FROM ml.next_label_task('slow', 'sleepy') \gset
UPDATE ml.label_tasks SET assigned_at = assigned_at - interval '2 seconds' WHERE id = :slow_task;
-- the next call reclaims it, and the item is handed out again
SELECT key = :'slow_key' AS same_item FROM ml.next_label_task('slow', 'eager');
SELECT count(*) AS tasks_of_sleepy FROM ml.label_tasks WHERE labeler = 'sleepy';
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, %L)', :slow_task, 'sleepy', 'x'));

-- ---------- bad input ----------
SELECT expect_error($$SELECT ml.create_labeling_job('small', 'lab_bc', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job(NULL, 'lab_bc', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('', 'lab_bc', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'no_such_table', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'no_such_column')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'SELECT id % 3 AS id FROM lab_bc', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'SELECT NULL::int AS id FROM lab_bc', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'SELECT id FROM lab_bc WHERE false', 'id')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"lables": ["a", "b"]}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"labels": ["a"]}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"labels": ["a", "a"]}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"labelers_per_item": 0}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"batch_size": 2.5}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"strategy": "smart"}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"strategy": "entropy"}')$$);
SELECT model_id > 0 AS trained FROM ml.train('label_reg', 'SELECT mean_radius, mean_area FROM lab_bc', 'mean_area', 'linear');
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"strategy": "margin", "project": "label_reg"}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"gold": {"1": "maybe"}, "labels": ["yes", "no"]}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"gold": {"99999": "yes"}}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"gold_rate": 2}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"task_timeout": "soon"}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '{"task_timeout": "-1 hour"}')$$);
SELECT expect_error($$SELECT ml.create_labeling_job('x', 'lab_bc', 'id', '[]')$$);
SELECT count(*) AS no_partial_jobs FROM ml.labeling_jobs WHERE name = 'x';
SELECT expect_error($$SELECT * FROM ml.next_label_task('nope', 'ann')$$);
SELECT expect_error($$SELECT * FROM ml.next_label_task('small', NULL)$$);
SELECT expect_error($$SELECT ml.submit_label(999999, 'ann', 'benign')$$);
SELECT ml.create_labeling_job('strict', 'SELECT id FROM lab_bc WHERE id <= 5', 'id', '{"labels": ["yes", "no"]}') > 0 AS created;
SELECT task_id AS strict_task FROM ml.next_label_task('strict', 'ann') \gset
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, %L)', :strict_task, 'ann', 'maybe'));
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, %L)', :strict_task, 'bob', 'yes'));
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, NULL)', :strict_task, 'ann'));
SELECT ml.submit_label(:strict_task, 'ann', 'yes');
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, %L)', :strict_task, 'ann', 'no'));
SELECT expect_error($$SELECT * FROM ml.labeled('strict', 'vote')$$);
SELECT expect_error($$SELECT * FROM ml.labeled('nope')$$);

-- ---------- privileges ----------
SELECT job_id AS strict_job FROM ml.label_tasks WHERE id = :strict_task \gset
CREATE ROLE label_outsider;
GRANT ml_developer TO label_outsider;
SET ROLE label_outsider;
SELECT count(*) AS visible_jobs FROM ml.labeling_jobs;
SELECT count(*) AS visible_items FROM ml.label_items;
SELECT count(*) AS visible_status FROM ml.labeling_status;
SELECT expect_error($$SELECT * FROM ml.next_label_task('small', 'mallory')$$);
SELECT expect_error($$SELECT * FROM ml.labeled('small')$$);
SELECT expect_error(format('SELECT ml.submit_label(%s, %L, %L)', :strict_task + 0, 'ann', 'no'));
SELECT expect_error(format('INSERT INTO ml.label_tasks (job_id, key, labeler, gold) VALUES (%s, %L, %L, false)',
                           :strict_job, '1', 'mallory'));
-- a role that cannot read the source cannot make a job of it
SELECT expect_error($$SELECT ml.create_labeling_job('stolen', 'lab_bc', 'id')$$);
RESET ROLE;
DROP ROLE label_outsider;

SELECT ml.drop_labeling_job('small');
SELECT count(*) AS small_left FROM ml.label_items i WHERE NOT EXISTS (SELECT 1 FROM ml.labeling_jobs j WHERE j.id = i.job_id);
