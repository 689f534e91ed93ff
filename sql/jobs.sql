-- sql/jobs.sql: queueing jobs and schedules.  The regression database is
-- not ml.database, so no worker runs here: this suite checks the arguments,
-- the errors (each with its SQLSTATE), the privileges and what a canceled
-- queued job looks like.  Running jobs are tested in test/t/006_jobs.pl.

SELECT setval('ml.models_id_seq', 130000, false);

-- the launcher's database depends on the server's configuration
CREATE FUNCTION mask_db(msg text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT replace(msg, '"' || current_setting('ml.database') || '"', '"<ml.database>"') $$;

CREATE TABLE jobs_src AS
SELECT g AS id, g::float8 / 10 AS x, 2 * g::float8 / 10 + 1 AS y FROM generate_series(1, 40) g;
SELECT project, deployed FROM ml.train('jobs_p', 'SELECT x, y FROM jobs_src', 'y', 'linear', deploy => 'always');

-- the settings
SHOW ml.max_workers;
SHOW ml.naptime;
SELECT current_setting('ml.database') <> current_database() AS other_database;
SELECT expect_error($$SET ml.naptime = '1s'$$);
SELECT expect_error($$SET ml.database = 'other'$$);

-- ml.batch_predict: bad arguments, each before anything is written
SELECT expect_error($$SELECT ml.batch_predict('no_such_project', 'jobs_src', 'jobs_out', 'id')$$);
SELECT expect_error($$SELECT ml.batch_predict(NULL, 'jobs_src', 'jobs_out', 'id')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', NULL, 'id')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'no_such_table', 'jobs_out', 'id')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'no_such_column')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '[1]')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"threads": 2}')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"workers": 0}')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"workers": 1.5}')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"workers": "2"}')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"workers": 65}')$$);
SELECT expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"chunk_rows": 0}')$$);
-- the key must identify each row
SELECT expect_error_detail($$SELECT ml.batch_predict('jobs_p', 'SELECT id % 7 AS k, x FROM jobs_src', 'jobs_out', 'k')$$);
SELECT expect_error_detail($$SELECT ml.batch_predict('jobs_p', 'SELECT nullif(id, 3) AS k, x FROM jobs_src', 'jobs_out', 'k')$$);
-- an output table of another shape
CREATE TABLE jobs_wrong (id int, prediction float8);
SELECT expect_error_detail($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_wrong', 'id')$$);
-- a project without a deployed model
SELECT project, deployed FROM ml.train('jobs_undeployed', 'SELECT x, y FROM jobs_src', 'y', 'linear', deploy => 'never');
SELECT expect_error($$SELECT ml.batch_predict('jobs_undeployed', 'jobs_src', 'jobs_out', 'id')$$);
-- valid arguments, but this database has no worker: nothing is created
SELECT mask_db(expect_error($$SELECT ml.batch_predict('jobs_p', 'jobs_src', 'jobs_out', 'id', '{"workers": 2}')$$));
SELECT to_regclass('jobs_out') AS jobs_out_table, (SELECT count(*) FROM ml.jobs) AS jobs;

-- ml.train_job and ml.schedule_retrain
SELECT expect_error($$SELECT ml.train_job(NULL, 'jobs_src')$$);
SELECT expect_error($$SELECT ml.train_job('jobs_p', 'jobs_src', '{"epochs": 3}')$$);
SELECT expect_error($$SELECT ml.train_job('jobs_p', 'jobs_src', '"linear"')$$);
SELECT expect_error($$SELECT ml.train_job('jobs_p', 'no_such_table')$$);
SELECT mask_db(expect_error($$SELECT ml.train_job('jobs_p', 'jobs_src', '{"algorithm": "ridge"}')$$));
SELECT expect_error($$SELECT ml.schedule_retrain('no_such_project', '1 hour', 'jobs_src')$$);
SELECT expect_error($$SELECT ml.schedule_retrain('jobs_p', '500 milliseconds', 'jobs_src')$$);
SELECT expect_error($$SELECT ml.schedule_retrain('jobs_p', NULL, 'jobs_src')$$);
SELECT expect_error($$SELECT ml.schedule_retrain('jobs_p', '1 hour', 'jobs_src', '{"gate": {"min_r2": 0.9}, "bogus": 1}')$$);
SELECT mask_db(expect_error($$SELECT ml.schedule_retrain('jobs_p', '1 hour', 'jobs_src', '{"deploy": "auto"}')$$));
SELECT count(*) AS schedules FROM ml.schedules;

-- unknown ids
SELECT expect_error($$SELECT ml.cancel_job(999999)$$);
SELECT expect_error($$SELECT ml.job_wait(999999)$$);
SELECT expect_error($$SELECT ml.job_wait(NULL)$$);
SELECT expect_error($$SELECT ml.unschedule(999999)$$);
SELECT expect_error($$SELECT ml.run_schedule(999999)$$);

-- the internal entry point checks what the wrappers check, and a role
-- cannot attach its job to a schedule
SELECT mask_db(expect_error($$SELECT ml._queue_job('train', NULL, NULL, '{}', NULL)$$));
SELECT expect_error($$SELECT ml._queue_job('train', NULL, 1, '{}', NULL)$$);
SELECT mask_db(expect_error($$SELECT ml._add_schedule(1, '1 hour', 'jobs_src', '{}')$$));

-- the tables are read through the views; their writes are the functions'
CREATE ROLE regress_ml_jobs_a;
GRANT ml_developer TO regress_ml_jobs_a;
SET ROLE regress_ml_jobs_a;
SELECT expect_error($$SELECT args FROM ml.jobs$$);
SELECT expect_error($$SELECT lo, hi, checkpoint FROM ml.job_parts$$);
SELECT expect_error($$UPDATE ml.jobs SET status = 'succeeded'$$);
SELECT expect_error($$INSERT INTO ml.schedules (project_id, every, source, owner, next_run) VALUES (1, '1 hour', 'x', 'regress_ml_jobs_a', now())$$);
SELECT expect_error($$SELECT ml._settle_job(1)$$);
SELECT count(*) AS visible_jobs FROM ml.job_status;
RESET ROLE;
DROP ROLE regress_ml_jobs_a;

-- waiting needs a new snapshot for each look
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT expect_error($$SELECT ml.job_wait(999999)$$);
ROLLBACK;
SELECT expect_error($$SELECT ml.job_wait(999999, '-1 second')$$);

DROP TABLE jobs_src, jobs_wrong;
SELECT ml.drop_project('jobs_p'), ml.drop_project('jobs_undeployed');
DROP FUNCTION mask_db(text);
