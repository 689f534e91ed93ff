# test/t/002_cache_invalidation.pl
#
# The per-backend model cache follows deployments made by other connections:
# a long-lived connection keeps serving the old model while another connection's
# training or deployment is uncommitted (or rolled back), switches to the
# new model at its next statement once that commits, switches back after a
# rollback deployment, and never changes model in the middle of a
# statement.

use strict;
use warnings;

use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $datadir = abs_path(($ENV{TESTDIR} // '.') . '/data');
die "data directory $datadir has no diabetes.csv" unless -f "$datadir/diabetes.csv";

my $cols = 'age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, progression';

my $node = PostgreSQL::Test::Cluster->new('cache');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
$node->start;

$node->safe_psql(
	'postgres', qq{
	CREATE EXTENSION pgmaker;
	CREATE TABLE diabetes (
		age float8, sex float8, bmi float8, bp float8, s1 float8, s2 float8,
		s3 float8, s4 float8, s5 float8, s6 float8, progression float8);
	COPY diabetes FROM '$datadir/diabetes.csv' WITH (FORMAT csv, HEADER true);
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM diabetes'), '442', 'diabetes loaded');

my $m1 = $node->safe_psql('postgres',
	q{SELECT model_id FROM ml.train('p', 'diabetes', 'progression', algorithm => 'linear')});
like($m1, qr/^\d+$/, 'first model trained');
is($node->safe_psql('postgres', q{SELECT live_model FROM ml.overview WHERE project = 'p'}),
	$m1, 'first model is live');

# One fixed row, as a record and as a float8[] in training order.
my $probe = "SELECT ml.predict('p', d) FROM diabetes d ORDER BY $cols LIMIT 1";
my $probe_by_id = sub {
	my $id = shift;
	return "SELECT ml.predict(${id}::bigint, d) FROM diabetes d ORDER BY $cols LIMIT 1";
};
my $features = $node->safe_psql('postgres',
	"SELECT ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6] FROM diabetes ORDER BY $cols LIMIT 1");
like($features, qr/^\{[^}]+\}$/, 'probe row as an array');

# Connections: s1 only predicts; s2 trains and deploys.
my $s1 = $node->background_psql('postgres', on_error_stop => 0);
my $s2 = $node->background_psql('postgres', on_error_stop => 0);
$s1->query_safe('SET client_min_messages = warning');
$s2->query_safe('SET client_min_messages = warning');

my $v1 = $s1->query_safe($probe);
like($v1, qr/^-?\d/, 's1: prediction with the first model');
is($s1->query_safe($probe_by_id->($m1)), $v1, 's1: it is the first model\'s prediction');
is($s1->query_safe("SELECT ml.predict('p', '$features'::float8[])"),
	$v1, 's1: same prediction from the float8[] form');
is($s1->query_safe($probe), $v1, 's1: cached model gives the same prediction');

# s2 trains a very different model and deploys it, without committing.
$s2->query_safe('BEGIN');
my $m2 = $s2->query_safe(
	q{SELECT model_id FROM ml.train('p', 'diabetes', 'progression', algorithm => 'ridge',
		hyperparams => '{"alpha": 1000}', deploy => 'always')});
like($m2, qr/^\d+$/, 's2: second model trained (uncommitted)');
isnt($m2, $m1, 's2: second model has its own id');
my $v2_inside = $s2->query_safe($probe);
isnt($v2_inside, $v1, 's2: its own transaction already predicts with the second model');
is($s2->query_safe($probe_by_id->($m2)), $v2_inside,
	's2: ... which is the second model\'s prediction');

is($s1->query_safe($probe), $v1, 's1: uncommitted training does not change the prediction');
is($s1->query_safe(q{SELECT live_model FROM ml.overview WHERE project = 'p'}),
	$m1, 's1: overview still shows the first model');

$s2->query_safe('COMMIT');

my $v2 = $s1->query_safe($probe);
isnt($v2, $v1, 's1: next statement after the commit predicts differently');
is($v2, $v2_inside, 's1: ... the same value s2 saw');
is($s1->query_safe($probe_by_id->($m2)), $v2, 's1: ... which is the second model\'s prediction');
is($s1->query_safe("SELECT ml.predict('p', '$features'::float8[])"),
	$v2, 's1: the float8[] form follows too');
is($node->safe_psql('postgres', $probe), $v2, 'a new connection predicts with the second model');

# A deployment that is rolled back changes nothing.
$s2->query_safe('BEGIN');
is($s2->query_safe(qq{SELECT model_id FROM ml.deploy('p', ${m1}::bigint)}),
	$m1, 's2: first model deployed again (uncommitted)');
is($s2->query_safe($probe), $v1, 's2: its own transaction predicts with the first model');
is($s1->query_safe($probe), $v2, 's1: uncommitted deployment does not change the prediction');
$s2->query_safe('ROLLBACK');
is($s1->query_safe($probe), $v2, 's1: rolled-back deployment does not change the prediction');
is($s2->query_safe($probe), $v2, 's2: after its rollback it predicts with the second model');

# Rollback deployment, committed (autocommit).
is($s2->query_safe(q{SELECT model_id FROM ml.deploy('p', 'rollback')}),
	$m1, 's2: rollback deploys the first model');
is($s1->query_safe($probe), $v1, 's1: back to the first model\'s prediction after the rollback');
is($s1->query_safe("SELECT ml.predict('p', '$features'::float8[])"),
	$v1, 's1: the float8[] form follows too');

# Within one statement the model does not change.  s1 predicts for rows
# 1..3 of generate_series; after row 1 it waits for an advisory lock that
# s2 holds.  While it waits s2 deploys the second model and commits, then
# releases the lock.  Rows 2 and 3 must still use the first model.
$s2->query_safe('SELECT pg_advisory_lock(4242)');
my $stmt = qq{SELECT string_agg(ml.predict('p', '$features'::float8[])::text
	|| CASE WHEN i = 1 THEN pg_advisory_lock_shared(4242)::text ELSE '' END, ',' ORDER BY i)
	FROM generate_series(1, 3) AS i;
};
$s1->query_until(qr/mid_statement_started/, "\\echo mid_statement_started\n$stmt");
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}),
	's1 is waiting inside its statement');
is($s2->query_safe(qq{SELECT model_id FROM ml.deploy('p', ${m2}::bigint)}),
	$m2, 's2: second model deployed while s1 is mid-statement');
is($s2->query_safe('SELECT pg_advisory_unlock(4242)'), 't', 's2: lock released');
my $mid = $s1->query_until(qr/\n/, '');
chomp $mid;
is($mid, "$v1,$v1,$v1", 's1: every row of the statement used the model live at its start');
is($s1->query_safe('SELECT pg_advisory_unlock_shared(4242)'), 't', 's1: lock released');
is($s1->query_safe("SELECT ml.predict('p', '$features'::float8[])"),
	$v2, 's1: the next statement uses the second model');

# A connection inside a READ COMMITTED transaction block: each statement sees
# the deployments committed before it started.
$s1->query_safe('BEGIN ISOLATION LEVEL READ COMMITTED');
is($s1->query_safe($probe), $v2, 's1 (transaction block): second model');
is($s2->query_safe(q{SELECT model_id FROM ml.deploy('p', 'rollback')}),
	$m1, 's2: rollback deploys the first model');
is($s1->query_safe($probe), $v1,
	's1 (transaction block): the next statement predicts with the first model');
is($s1->query_safe(q{SELECT live_model FROM ml.overview WHERE project = 'p'}),
	$m1, 's1 (transaction block): and sees the first model live');
$s1->query_safe('COMMIT');
is($s1->query_safe($probe), $v1, 's1: first model after the transaction block');

# Inside a READ COMMITTED transaction block, a statement that opens no
# table (a float8[] input) still sees a deployment committed meanwhile.
my $array_probe = "SELECT ml.predict('p', '$features'::float8[])";
$s1->query_safe('BEGIN ISOLATION LEVEL READ COMMITTED');
is($s1->query_safe($array_probe), $v1, 's1 (transaction block, no table): first model');
is($s2->query_safe(qq{SELECT model_id FROM ml.deploy('p', ${m2}::bigint)}),
	$m2, 's2: second model deployed');
is($s1->query_safe($array_probe), $v2,
	's1 (transaction block, no table): the next statement predicts with the second model');
$s1->query_safe('COMMIT');
is($s2->query_safe(q{SELECT model_id FROM ml.deploy('p', 'rollback')}),
	$m1, 's2: rollback to the first model');
is($s1->query_safe($array_probe), $v1, 's1: first model again');

# A connection inside a REPEATABLE READ transaction keeps its snapshot's model,
# and switches once the transaction ends.  Reading ml.overview inside the
# transaction makes s1 process the invalidation from s2's deployment while
# its snapshot still shows the first model live; the model it then loads
# must not outlive the transaction.
$s1->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($s1->query_safe($probe), $v1, 's1 (repeatable read): first model');
is($s2->query_safe(qq{SELECT model_id FROM ml.deploy('p', ${m2}::bigint)}),
	$m2, 's2: second model deployed');
is($s1->query_safe(q{SELECT live_model FROM ml.overview WHERE project = 'p'}),
	$m1, 's1 (repeatable read): its snapshot still shows the first model live');
is($s1->query_safe($probe), $v1, 's1 (repeatable read): still the first model');
$s1->query_safe('COMMIT');
is($s1->query_safe($probe), $v2, 's1: second model after the repeatable read transaction');
is($s1->query_safe($probe), $v2, 's1: second model on the statement after that too');

$s1->quit;
$s2->quit;

# The history has one row per committed deployment, newest last.
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(model_id || ':' || strategy, ',' ORDER BY id) FROM ml.deployments}),
	"$m1:auto,$m2:always,$m1:rollback,$m2:manual,$m1:rollback,$m2:manual,$m1:rollback,$m2:manual",
	'deployment history records every committed deployment and none of the rolled-back one');

$node->stop;

done_testing();
