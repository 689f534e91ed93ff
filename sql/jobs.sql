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

-- a queued job (queued directly, as the functions above would): it is the
-- caller's, and only members of that role cancel it or see its arguments
CREATE ROLE regress_ml_jobs_a;
CREATE ROLE regress_ml_jobs_b;
GRANT USAGE ON SCHEMA public TO regress_ml_jobs_a, regress_ml_jobs_b;
SET ROLE regress_ml_jobs_a;
SELECT ml._queue_job('train', NULL, NULL, '{"project": "jobs_q", "source": "jobs_src", "options": {}}', NULL) AS job_a \gset
SELECT ml._queue_job('batch_predict', NULL, NULL, '{"query": "SELECT 1"}', ARRAY['10', '20']) AS job_parts \gset
SELECT kind, status, progress, owner, args IS NOT NULL AS args_shown, elapsed, eta
  FROM ml.job_status WHERE id = :job_a;
SELECT part, status FROM ml.job_parts WHERE job_id = :job_parts ORDER BY part;
SELECT expect_error($$SELECT lo, hi, checkpoint FROM ml.job_parts$$);
SELECT expect_error($$SELECT args FROM ml.jobs$$);
SELECT expect_error($$UPDATE ml.jobs SET status = 'succeeded'$$);
SELECT expect_error($$INSERT INTO ml.schedules (project_id, every, source, owner, next_run) VALUES (1, '1 hour', 'x', 'regress_ml_jobs_a', now())$$);
RESET ROLE;
SET ROLE regress_ml_jobs_b;
SELECT status, owner, args IS NULL AS args_hidden FROM ml.job_status WHERE id = :job_a;
SELECT expect_error(format('SELECT ml.cancel_job(%s)', :job_a));
RESET ROLE;
SET ROLE regress_ml_jobs_a;
SELECT ml.cancel_job(:job_a) AS canceled;
SELECT ml.cancel_job(:job_a) AS canceled_again;
SELECT status, progress, finished_at IS NOT NULL AS finished, error FROM ml.job_status WHERE id = :job_a;
SELECT status FROM ml.job_wait(:job_a, '1 second');
SELECT expect_error(format($$SELECT ml.job_wait(%s, '-1 second')$$, :job_parts));
-- a queued job that does not end within the timeout: its row, as it is
SELECT status, progress, finished_at FROM ml.job_wait(:job_parts, '100 milliseconds');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT expect_error(format('SELECT ml.job_wait(%s)', :job_parts));
ROLLBACK;
SELECT ml.cancel_job(:job_parts) AS canceled;
SELECT part, status FROM ml.job_parts WHERE job_id = :job_parts ORDER BY part;
RESET ROLE;
-- a superuser is a member of every role
SELECT status, args ->> 'project' AS project FROM ml.job_status WHERE id = :job_a;

DELETE FROM ml.jobs;
REVOKE USAGE ON SCHEMA public FROM regress_ml_jobs_a;
DROP ROLE regress_ml_jobs_a;
REVOKE USAGE ON SCHEMA public FROM regress_ml_jobs_b;
DROP ROLE regress_ml_jobs_b;
DROP TABLE jobs_src, jobs_wrong;
SELECT ml.drop_project('jobs_p'), ml.drop_project('jobs_undeployed');
DROP FUNCTION mask_db(text);
