# test/t/005_parallel_train.pl
#
# ml.train's aggregate path runs its scan in parallel workers: with
# auto_explain logging nested statements, the plan ml.train executed has
# a Partial Aggregate of ml._train_moments under a Gather that launched
# workers.  The model is the same with and without workers: the row hash
# decides the hold-out wherever a row is read, and the partial states merge
# exactly.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('parallel');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pgmaker'
max_worker_processes = 8
max_parallel_workers = 4
});
$node->start;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pgmaker;
	SELECT setseed(0.3);
	CREATE TABLE big AS
	SELECT x1, x2, x3, 1 + 2 * x1 - x2 + 0.5 * x3 + 0.01 * random() AS y
	  FROM (SELECT random() AS x1, random() AS x2, random() AS x3
	          FROM generate_series(1, 200000) OFFSET 0) s;
	ANALYZE big;
});

my $settings = q{
	SET ml.aggregate_train_min_rows = 0;
	SET parallel_setup_cost = 0;
	SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0;
};

my $log_offset = -s $node->logfile;
$node->safe_psql(
	'postgres', qq{
	$settings
	SET max_parallel_workers_per_gather = 2;
	LOAD 'auto_explain';
	SET auto_explain.log_min_duration = 0;
	SET auto_explain.log_nested_statements = on;
	SET auto_explain.log_analyze = on;
	SELECT model_id FROM ml.train('par', 'big', 'y', 'linear', deploy => 'never');
});
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/Query Text: SELECT ml\._train_moments\(/, 'ml.train ran the aggregate scan');
# the plan of that statement: from its text to the next log line's prefix
my ($plan) = $log =~ /(Query Text: SELECT ml\._train_moments\(.*?Partial Aggregate.*?)(?:\n\S|\z)/s;
ok(defined $plan, 'the aggregate scan ran as a Partial Aggregate');
like($plan // '', qr/Workers Launched: [12]\b/, 'parallel workers took part in the scan');

$node->safe_psql(
	'postgres', qq{
	$settings
	SET max_parallel_workers_per_gather = 0;
	SELECT model_id FROM ml.train('serial', 'big', 'y', 'linear', deploy => 'never');
});

# the same split, metrics and model either way
is( $node->safe_psql(
		'postgres', q{
	SELECT a.n_train = b.n_train AND a.n_test = b.n_test AND a.n_train + a.n_test = 200000
	  FROM ml.models a, ml.models b
	 WHERE a.project_id = (SELECT id FROM ml.projects WHERE name = 'par')
	   AND b.project_id = (SELECT id FROM ml.projects WHERE name = 'serial')}),
	't', 'the same rows train and are held out with and without workers');
is( $node->safe_psql(
		'postgres', q{
	SELECT bool_and(abs((a.metrics->>k)::float8 - (b.metrics->>k)::float8) < 1e-12)
	  FROM ml.models a, ml.models b, unnest(ARRAY['r2', 'rmse', 'mae', 'n']) k
	 WHERE a.project_id = (SELECT id FROM ml.projects WHERE name = 'par')
	   AND b.project_id = (SELECT id FROM ml.projects WHERE name = 'serial')}),
	't', 'the same hold-out metrics with and without workers');
is( $node->safe_psql(
		'postgres', q{
	SELECT max(abs(ml.predict(a.id, b) - ml.predict(s.id, b))) < 1e-9
	  FROM big b,
	       (SELECT m.id FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'par') a,
	       (SELECT m.id FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'serial') s}),
	't', 'the same coefficients with and without workers');

# logistic regression: each Newton step is a scan with ml._logistic_step,
# a Partial Aggregate in parallel workers too, and the model is the same
# with and without workers
$node->safe_psql('postgres', q{
	CREATE VIEW bigc AS SELECT x1, x2, x3, y > 1.25 + 0.3 * sin(x1 * 5000) AS yc FROM big;
});
$log_offset = -s $node->logfile;
$node->safe_psql(
	'postgres', qq{
	$settings
	SET max_parallel_workers_per_gather = 2;
	LOAD 'auto_explain';
	SET auto_explain.log_min_duration = 0;
	SET auto_explain.log_nested_statements = on;
	SET auto_explain.log_analyze = on;
	SELECT model_id FROM ml.train('lpar', 'bigc', 'yc', 'logistic', deploy => 'never');
});
$log = slurp_file($node->logfile, $log_offset);
my @steps = $log =~ /(Query Text: SELECT ml\._logistic_step\(.*?Partial Aggregate.*?)(?:\n\S|\z)/sg;
ok(@steps >= 1, 'ml.train ran Newton steps as a Partial Aggregate (' . scalar(@steps) . ' scans)');
ok((grep { /Workers Launched: [12]\b/ } @steps) == @steps, 'parallel workers took part in every step');
$node->safe_psql(
	'postgres', qq{
	$settings
	SET max_parallel_workers_per_gather = 0;
	SELECT model_id FROM ml.train('lserial', 'bigc', 'yc', 'logistic', deploy => 'never');
});
is( $node->safe_psql(
		'postgres', q{
	SELECT a.n_train = b.n_train AND a.n_test = b.n_test AND a.n_train + a.n_test = 200000
	       AND a.metrics->>'split' = 'row hash'
	       AND abs((a.metrics->>'accuracy')::float8 - (b.metrics->>'accuracy')::float8) < 1e-12
	       AND abs((a.metrics->>'log_loss')::float8 - (b.metrics->>'log_loss')::float8) < 1e-9
	  FROM ml.models a, ml.models b
	 WHERE a.project_id = (SELECT id FROM ml.projects WHERE name = 'lpar')
	   AND b.project_id = (SELECT id FROM ml.projects WHERE name = 'lserial')}),
	't', 'the same logistic split and hold-out metrics with and without workers');
is( $node->safe_psql(
		'postgres', q{
	SELECT max(abs((ml.predict_proba(a.id, b))[2] - (ml.predict_proba(s.id, b))[2])) < 1e-9
	  FROM bigc b,
	       (SELECT m.id FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'lpar') a,
	       (SELECT m.id FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'lserial') s}),
	't', 'the same logistic model with and without workers');

$node->stop;
done_testing();
