# test/t/006_jobs.pl
#
# pgmaker's background workers on a server that preloads pgmaker: jobs are
# queued, run, waited for and canceled; a job runs as the role that queued
# it; batch predictions write every key exactly once across a cancel, a
# restart and a worker killed with SIGKILL; the launcher comes back after a
# SIGTERM; scheduled retraining promotes a better model, keeps the live one
# when the gate refuses, and live predictions never fail meanwhile.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('jobs');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgmaker'
ml.database = 'postgres'
ml.naptime = '1s'
ml.max_workers = 2
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

# src: y = 1 + 2 x1 - x2 + noise, keyed by id.  In a job worker (and only
# there, so that the checks at queueing time stay quick) slow_src takes
# 100 ms more per transaction, so per chunk of a batch prediction, and
# sleepy() 5 ms per row.
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pgmaker;
	SELECT setseed(0.7);
	CREATE TABLE src AS
	SELECT g AS id, x1, x2, 1 + 2 * x1 - x2 + 0.05 * (random() - 0.5) AS y,
	       (x1 > x2) AS bigger
	  FROM (SELECT g, random() AS x1, random() AS x2 FROM generate_series(1, 3000) g OFFSET 0) s;
	ALTER TABLE src ADD PRIMARY KEY (id);
	CREATE FUNCTION in_worker() RETURNS boolean LANGUAGE sql STABLE AS $$
	    SELECT EXISTS (SELECT 1 FROM pg_stat_activity
	                    WHERE pid = pg_backend_pid() AND backend_type = 'pgmaker job worker')
	$$;
	CREATE FUNCTION pace() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
	BEGIN
	    IF current_setting('pgmaker_test.paced', true) IS DISTINCT FROM txid_current()::text AND in_worker() THEN
	        PERFORM set_config('pgmaker_test.paced', txid_current()::text, true);
	        PERFORM pg_sleep(0.1);
	    END IF;
	    RETURN true;
	END $$;
	CREATE FUNCTION sleepy() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
	BEGIN
	    IF in_worker() THEN
	        PERFORM pg_sleep(0.005);
	    END IF;
	    RETURN true;
	END $$;
	CREATE VIEW slow_src AS SELECT * FROM src WHERE pace();
	SELECT deployed FROM ml.train('p', 'SELECT x1, x2, y FROM src', 'y', 'linear', deploy => 'always');
	SELECT deployed FROM ml.train('c', 'SELECT x1, x2, bigger FROM src', 'bigger', 'logistic', deploy => 'always');
});

my $launcher_pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgmaker launcher'});
like($launcher_pid, qr/^\d+$/, 'the launcher runs');

# Waits for a job to end and returns "status|error".
sub wait_job
{
	my ($id, $timeout) = @_;
	$timeout //= 120;
	return $node->safe_psql('postgres',
		"SELECT status || '|' || coalesce(error, '') FROM ml.job_wait($id, '$timeout seconds')");
}

# Polls until a query returns 't'.
sub wait_until
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# ---------------------------------------------------------------- batch prediction
my $job = $node->safe_psql('postgres', q{SELECT ml.batch_predict('p', 'src', 'out1', 'id', '{"chunk_rows": 700}')});
is(wait_job($job), 'succeeded|', 'a batch prediction succeeds');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT o.id) || ' '
	       || count(*) FILTER (WHERE abs(o.prediction - ml.predict('p', s)) < 1e-12) || ' '
	       || count(*) FILTER (WHERE o.model_id = (SELECT model_id FROM ml.deployments d
	                                                JOIN ml.projects pr ON pr.id = d.project_id
	                                               WHERE pr.name = 'p' ORDER BY d.id DESC LIMIT 1))
	  FROM out1 o JOIN src s USING (id)}),
	'3000 3000 3000 3000',
	'every key once, with the live model\'s prediction and its id');
is( $node->safe_psql('postgres',
		"SELECT rows_done || ' ' || rows_total || ' ' || progress || ' ' || (elapsed > interval '0') FROM ml.job_status WHERE id = $job"),
	'3000 3000 1 true',
	'the job counts its rows');

# two workers over key ranges give the same rows
$job = $node->safe_psql('postgres',
	q{SELECT ml.batch_predict('p', 'src', 'out2', 'id', '{"workers": 2, "chunk_rows": 500}')});
is(wait_job($job), 'succeeded|', 'a batch prediction in two parts succeeds');
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) || ' ' || sum(rows_done) || ' ' || bool_and(status = 'succeeded')
	  FROM ml.job_parts WHERE job_id = $job}),
	'2 3000 true',
	'two parts, every row done');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM (SELECT id, prediction FROM out2 EXCEPT SELECT id, prediction FROM out1) d}),
	'0',
	'the two parts wrote the same predictions as one');

# classification: label and probabilities
$job = $node->safe_psql('postgres', q{SELECT ml.batch_predict('c', 'src', 'out3', 'id')});
is(wait_job($job), 'succeeded|', 'a classification batch succeeds');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FILTER (WHERE o.label = ml.predict_label('c', s)
	                          AND o.probabilities = ml.predict_proba('c', s))
	  FROM out3 o JOIN src s USING (id)}),
	'3000',
	'labels and probabilities are the model\'s');

# bad input with a worker available: nothing is queued
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT ml.batch_predict('p', 'SELECT id % 10 AS k, x1, x2 FROM src', 'out4', 'k')});
like($stderr, qr/key "k" of the source is not unique/, 'a key that is not unique is refused');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT ml.batch_predict('p', 'src', 'out4', 'id', '{"workers": 3}')});
like($stderr, qr/option "workers" is 3, more than ml.max_workers \(2\)/, 'too many workers are refused');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT ml.schedule_retrain('p', '0.5 seconds', 'src')});
like($stderr, qr/every must be at least 1 second/, 'an interval below one second is refused');
is($node->safe_psql('postgres', q{SELECT to_regclass('out4') IS NULL}), 't', 'no output table was created');

# ---------------------------------------------------------------- training jobs and roles
$job = $node->safe_psql('postgres',
	q{SELECT ml.train_job('p2', 'SELECT x1, x2, y FROM src', '{"target": "y", "algorithm": "ridge", "deploy": "always"}')});
is(wait_job($job), 'succeeded|', 'a training job succeeds');
is( $node->safe_psql(
		'postgres', qq{
	SELECT m.algorithm || ' ' || (j.result ->> 'deployed')
	  FROM ml.jobs j JOIN ml.models m ON m.id = j.model_id WHERE j.id = $job}),
	'ridge true',
	'its model is stored and deployed');

$node->safe_psql(
	'postgres', q{
	CREATE ROLE alice LOGIN;
	GRANT ml_developer TO alice;
	CREATE TABLE secret AS SELECT x1, x2, y FROM src;
});
$job = $node->safe_psql('postgres',
	q{SELECT ml.train_job('alice_p', 'secret', '{"target": "y"}')}, extra_params => [ '-U', 'alice' ]);
is(wait_job($job), 'failed|permission denied for table secret', 'a job runs with its owner\'s privileges');
is( $node->safe_psql('postgres', "SELECT owner || ' ' || (result ->> 'sqlstate') FROM ml.jobs WHERE id = $job"),
	'alice 42501',
	'the error\'s SQLSTATE is kept');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ml.projects WHERE name = 'alice_p'}),
	'0', 'the failed job left no project');

# ---------------------------------------------------------------- cancel
$job = $node->safe_psql('postgres',
	q{SELECT ml.batch_predict('p', 'slow_src', 'out5', 'id', '{"chunk_rows": 25}')});
wait_until("SELECT rows_done >= 50 FROM ml.jobs WHERE id = $job", 'the slow job makes progress');
($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT ml.cancel_job($job)", extra_params => [ '-U', 'alice' ]);
like($stderr, qr/must be a member of role "postgres" to cancel job $job/, 'another role cannot cancel it');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM ml.job_status WHERE id = $job",
		extra_params => [ '-U', 'alice' ]),
	'0',
	'another role does not see the job');
$node->safe_psql('postgres', q{CREATE ROLE ops LOGIN; GRANT ml_admin TO ops;});
is( $node->safe_psql(
		'postgres', "SELECT status || ' ' || (args IS NOT NULL) || ' ' || (eta IS NOT NULL) FROM ml.job_status WHERE id = $job",
		extra_params => [ '-U', 'ops' ]),
	'running true true',
	'ml_admin sees it running with its arguments and an estimate');
is($node->safe_psql('postgres', "SELECT status FROM ml.job_wait($job, '100 milliseconds')"),
	'running', 'a wait that times out returns the running job');
is($node->safe_psql('postgres', "SELECT ml.cancel_job($job)"), 't', 'its owner cancels it');
is(wait_job($job), 'canceled|', 'the job ends canceled');
is( $node->safe_psql(
		'postgres', qq{SELECT (SELECT count(*) FROM out5) = rows_done AND rows_done < 3000 FROM ml.jobs WHERE id = $job}),
	't',
	'the output holds exactly the chunks committed before the cancel');

# ---------------------------------------------------------------- kill -9 a batch worker
$job = $node->safe_psql('postgres',
	q{SELECT ml.batch_predict('p', 'slow_src', 'out6', 'id', '{"chunk_rows": 100}')});
wait_until("SELECT rows_done >= 100 FROM ml.jobs WHERE id = $job", 'the batch job runs');
my $worker = $node->safe_psql('postgres', "SELECT pid FROM ml.job_parts WHERE job_id = $job AND status = 'running'");
like($worker, qr/^\d+$/, 'its worker is known');
kill 'KILL', $worker;
# the postmaster restarts every backend; the launcher queues the part again
$node->poll_query_until('postgres', 'SELECT 1', '1');
is(wait_job($job, 180), 'succeeded|', 'the job resumes after the crash and succeeds');
is( $node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT id) FROM out6}),
	'3000 3000', 'every key exactly once after the crash');
is( $node->safe_psql('postgres', "SELECT attempts FROM ml.job_parts WHERE job_id = $job"),
	'2', 'the part was started twice: before the crash and after');

# ---------------------------------------------------------------- restart with jobs queued and running
my $batch = $node->safe_psql('postgres',
	q{SELECT ml.batch_predict('p', 'slow_src', 'out7', 'id', '{"chunk_rows": 100}')});
my $slow_train = $node->safe_psql('postgres',
	q{SELECT ml.train_job('p3', 'SELECT x1, x2, y FROM src WHERE sleepy()', '{"target": "y"}')});
my $queued = $node->safe_psql('postgres',
	q{SELECT ml.train_job('p4', 'SELECT x1, x2, y FROM src', '{"target": "y"}')});
wait_until("SELECT rows_done >= 100 FROM ml.jobs WHERE id = $batch", 'the batch job runs before the restart');
is( $node->safe_psql('postgres', "SELECT status FROM ml.jobs WHERE id IN ($slow_train, $queued) ORDER BY id"),
	"running\nqueued", 'a training job runs, another waits for a worker');
$node->restart;
is(wait_job($batch, 180), 'succeeded|', 'the batch job resumes after the restart');
is( $node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT id) FROM out7}),
	'3000 3000', 'every key exactly once after the restart');
is(wait_job($slow_train), 'failed|server restarted', 'the training cut short by the restart failed');
is(wait_job($queued), 'succeeded|', 'the queued training ran after the restart');

# ---------------------------------------------------------------- SIGTERM to the launcher
$launcher_pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgmaker launcher'});
kill 'TERM', $launcher_pid;
wait_until(
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgmaker launcher' AND pid <> $launcher_pid",
	'the launcher is started again after SIGTERM');
$job = $node->safe_psql('postgres', q{SELECT ml.batch_predict('p', 'src', 'out8', 'id')});
is(wait_job($job), 'succeeded|', 'the new launcher runs jobs');

# ---------------------------------------------------------------- scheduled retraining
# a live model trained on a corrupted target; the schedule trains on the
# true one and the gate promotes it
$node->safe_psql(
	'postgres', q{
	SELECT deployed FROM ml.train('s', 'SELECT x1, x2, CASE WHEN id % 2 = 0 THEN y ELSE -y END AS y FROM src', 'y', 'linear', deploy => 'always');
});
my $live = $node->safe_psql('postgres',
	q{SELECT model_id FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 's' ORDER BY d.id DESC LIMIT 1});
my $sched = $node->safe_psql('postgres', q{SELECT ml.schedule_retrain('s', '1 second', 'SELECT x1, x2, y FROM src')});
wait_until("SELECT last_status = 'succeeded' FROM ml.schedules WHERE id = $sched", 'the schedule runs');
is( $node->safe_psql('postgres', "SELECT (last_result ->> 'deployed') FROM ml.schedule_status WHERE id = $sched"),
	'true', 'the retrained model passed the gate');
my $new_live = $node->safe_psql('postgres',
	q{SELECT model_id FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 's' ORDER BY d.id DESC LIMIT 1});
isnt($new_live, $live, 'and serves now');
is($node->safe_psql('postgres', "SELECT ml.unschedule($sched)"), 't', 'the schedule is removed');

# a gate that no model passes: each run trains, the live model stays
$sched = $node->safe_psql('postgres',
	q{SELECT ml.schedule_retrain('s', '1 hour', 'SELECT x1, x2, y FROM src', '{"gate": {"min": {"r2": 1.5}}}')});
$job = $node->safe_psql('postgres', "SELECT ml.run_schedule($sched)");
is(wait_job($job), 'succeeded|', 'a run queued now succeeds');
is( $node->safe_psql('postgres', "SELECT (last_result ->> 'deployed') || ' ' || last_job_id FROM ml.schedule_status WHERE id = $sched"),
	"false $job", 'its model did not pass the gate');
is( $node->safe_psql('postgres',
		q{SELECT model_id FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 's' ORDER BY d.id DESC LIMIT 1}),
	$new_live,
	'the live model stays');
is( $node->safe_psql('postgres', "SELECT next_run > now() + interval '50 minutes' FROM ml.schedules WHERE id = $sched"),
	't', 'running now does not move the next run');
$node->safe_psql('postgres', "SELECT ml.unschedule($sched)");

# a schedule reads with its owner's rights: alice, granted deploy on s,
# schedules a retraining on a table she cannot read; ml_admin removes it
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT ml.schedule_retrain('s', '1 hour', 'SELECT x1, x2, y FROM secret')}, extra_params => [ '-U', 'alice' ]);
like($stderr, qr/permission denied to deploy with project "s"/, 'a retraining schedule needs the deploy level');
$node->safe_psql('postgres', q{SELECT ml.grant('s', 'alice', 'deploy')});
$sched = $node->safe_psql('postgres',
	q{SELECT ml.schedule_retrain('s', '1 hour', 'SELECT x1, x2, y FROM secret')}, extra_params => [ '-U', 'alice' ]);
$job = $node->safe_psql('postgres', "SELECT ml.run_schedule($sched)", extra_params => [ '-U', 'alice' ]);
is(wait_job($job), 'failed|permission denied for table secret', 'a scheduled run reads with its owner\'s rights');
is($node->safe_psql('postgres', "SELECT ml.unschedule($sched)", extra_params => [ '-U', 'ops' ]),
	't', 'ml_admin removes another owner\'s schedule');
$node->safe_psql('postgres', q{SELECT ml.revoke('s', 'alice')});

# ---------------------------------------------------------------- predictions during retraining
# pgbench predicts while a schedule retrains and promotes every second
$sched = $node->safe_psql('postgres',
	q{SELECT ml.schedule_retrain('s', '1 second', 'SELECT x1, x2, y FROM src', '{"deploy": "always"}')});
my $deploys_before = $node->safe_psql('postgres',
	q{SELECT count(*) FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 's'});
my $script = $node->basedir . '/predict.sql';
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh "SELECT ml.predict('s', ARRAY[0.3, 0.6]::float8[]);\n";
close($fh);
my ($out, $err) = run_command(
	[
		'pgbench', '-n', '-M', 'prepared', '-c', '2', '-j', '2', '-T', '6', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	]);
like($out, qr/number of failed transactions: 0 /, 'pgbench: no failed transaction');
like($out, qr/number of transactions actually processed: [1-9]/, 'pgbench: transactions ran');
my $deploys_after = $node->safe_psql('postgres',
	q{SELECT count(*) FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 's'});
cmp_ok($deploys_after, '>', $deploys_before + 1, 'models were promoted meanwhile');
$node->safe_psql('postgres', "SELECT ml.unschedule($sched)");

$node->stop;

# ---------------------------------------------------------------- without the preload
# training and prediction work; queueing a job says what is missing
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql(
	'postgres', q{
	CREATE EXTENSION pgmaker;
	CREATE TABLE src AS SELECT g AS id, g::float8 AS x, 2 * g::float8 AS y FROM generate_series(1, 20) g;
	SELECT deployed FROM ml.train('p', 'SELECT x, y FROM src', 'y', 'linear', deploy => 'always');
});
is($plain->safe_psql('postgres', q{SELECT round(ml.predict('p', ARRAY[10]::float8[])::numeric, 6)}),
	'20.000000', 'without the preload, prediction works');
($ret, $stdout, $stderr) = $plain->psql('postgres',
	q{\set VERBOSITY verbose
	SELECT ml.batch_predict('p', 'src', 'out', 'id')});
like($stderr, qr/55000: pgmaker's background workers are not running/, 'a batch prediction needs the workers');
like($stderr, qr/HINT:  Add pgmaker to shared_preload_libraries in postgresql.conf and restart the server./,
	'the hint says what to do');
is($plain->safe_psql('postgres', q{SELECT to_regclass('out') IS NULL AND NOT EXISTS (SELECT 1 FROM ml.jobs)}),
	't', 'nothing was written');
$plain->stop;

done_testing();
