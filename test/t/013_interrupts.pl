# test/t/013_interrupts.pl
#
# Cancel and terminate at random points (seeded) of training, loads and
# batch prediction jobs, on a server that preloads pgmaker: no backend
# crashes, a canceled or terminated training leaves no model, project or
# run behind, a canceled load leaves no table, and a canceled or
# terminated job ends with no part left running and no worker left over.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

srand(20261130);

my $node = PostgreSQL::Test::Cluster->new('interrupts');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgmaker'
ml.database = 'postgres'
ml.naptime = '200ms'
ml.max_workers = 2
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $csv = $node->basedir . '/big.csv';
sql(qq{
	CREATE EXTENSION pgmaker;
	SELECT setseed(0.3);
	CREATE TABLE big AS
	SELECT g AS id, x1, x2, x3, x4, x5, 1 + x1 - 2 * x2 + x3 * x4 + 0.1 * random() AS y,
	       (x1 + x2 > 1) AS label
	  FROM (SELECT g, random() AS x1, random() AS x2, random() AS x3, random() AS x4, random() AS x5
	          FROM generate_series(1, 200000) g) s;
	ALTER TABLE big ADD PRIMARY KEY (id);
	COPY big TO '$csv' WITH (FORMAT csv, HEADER true);
	SELECT count(*) FROM ml.train('live', 'SELECT x1, x2, x3, x4, x5, y FROM big WHERE id <= 1000', 'y', 'linear');
});

# Starts sql in the background under application_name tag; returns the
# handle and the output refs.
sub start_bg
{
	my ($tag, $query) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . " application_name=$tag",
			'-c', $query
		],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Interrupts the backend of tag (cancel or terminate) once it runs; true
# when it found it.
sub interrupt
{
	my ($tag, $how) = @_;
	my $fn = $how eq 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
	for (my $i = 0; $i < 200; $i++)
	{
		# only while it runs its statement: an idle session ignores a cancel
		my $n = sql("SELECT count($fn(pid)) FROM pg_stat_activity WHERE application_name = '$tag' AND state = 'active'");
		return 1 if $n > 0;
		usleep(10_000);
	}
	return 0;
}

# How long sql takes uninterrupted, in ms: the random points are drawn
# within it, so that most interrupts land mid-way.
sub duration_ms
{
	my ($query) = @_;
	my $t0 = time();
	sql($query);
	return int((time() - $t0) * 1000);
}

# ---------------------------------------------------------------- training
my %train_ms;
# the tree ensembles on fewer rows, to take seconds rather than tens
my %rows = (linear => 200000, logistic => 200000, xgboost => 15000, random_forest => 15000);
for my $algo (qw(linear logistic xgboost random_forest))
{
	my $target = $algo eq 'logistic' ? 'label' : 'y';
	$train_ms{$algo} = duration_ms(
		"SELECT count(*) FROM ml.train('timing_$algo', 'SELECT x1, x2, x3, x4, x5, $target FROM big WHERE id <= $rows{$algo}', '$target', '$algo')");
	note("$algo trains in $train_ms{$algo} ms uninterrupted");
}
my $models_before = sql(q{SELECT count(*) FROM ml.models});
my $trained = 0;
my $interrupted = 0;
for my $i (1 .. 12)
{
	# each algorithm is canceled once and terminated once at least
	my $how = int(($i - 1) / 4) % 2 ? 'terminate' : 'cancel';
	my $algo = (qw(linear logistic xgboost random_forest))[ $i % 4 ];
	my $target = $algo eq 'logistic' ? 'label' : 'y';
	my $cols = 'x1, x2, x3, x4, x5, ' . $target;
	my $delay = int(rand(0.8 * $train_ms{$algo}));
	my ($h, $out, $err) = start_bg("train$i",
		"SELECT model_id FROM ml.train('p$i', 'SELECT $cols FROM big WHERE id <= $rows{$algo}', '$target', '$algo')");
	usleep($delay * 1000);
	interrupt("train$i", $how);
	$h->finish;
	if ($$out =~ /^\d+$/m)
	{
		$trained++;
	}
	else
	{
		$interrupted++;
		like($$err, qr/canceling statement due to user request|terminating connection|server closed the connection/,
			"training $i ($algo, $how after $delay ms) ended by the interrupt");
		is(sql("SELECT count(*) FROM ml.projects WHERE name = 'p$i'"), '0',
			"training $i left no project behind");
	}
}
note("training: $trained finished before the interrupt, $interrupted interrupted");
cmp_ok($interrupted, '>=', 6, 'most trainings were interrupted mid-way');
is(sql(q{SELECT count(*) FROM ml.projects WHERE name LIKE 'p%' AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.project_id = ml.projects.id)}),
	'0', 'no project without a model');
is(sql(q{SELECT count(*) FROM ml.models}), $models_before + $trained,
	'only the finished trainings left models');
is(sql(q{SELECT count(*) FROM ml.models WHERE model IS NULL OR metrics IS NULL}), '0', 'no half-written model');
is(sql(q{SELECT count(*) FROM ml.runs r WHERE NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.run_id = r.id)}), '0',
	'no run without its model');

# ---------------------------------------------------------------- loads
my $load_ms = duration_ms("SELECT ml.load('file://$csv', 'timing_load', 'csv', '{\"mode\": \"create\"}')");
note("the load takes $load_ms ms uninterrupted");
for my $i (1 .. 6)
{
	my $how = $i % 2 ? 'cancel' : 'terminate';
	my $delay = int(rand(0.8 * $load_ms));
	my ($h, $out, $err) = start_bg("load$i", "SELECT ml.load('file://$csv', 'loaded$i', 'csv', '{\"mode\": \"create\"}')");
	usleep($delay * 1000);
	interrupt("load$i", $how);
	$h->finish;
	if ($$out =~ /^200000$/m)
	{
		is(sql("SELECT count(*) FROM loaded$i"), '200000', "load $i finished before the interrupt: every row");
	}
	else
	{
		is(sql("SELECT to_regclass('loaded$i') IS NULL"), 't', "load $i ($how after $delay ms) left no table");
	}
}

# ---------------------------------------------------------------- jobs
sub wait_job
{
	my ($job) = @_;
	my $state = '';
	for (my $t = 0; $t < 600; $t++)
	{
		$state = sql("SELECT status FROM ml.jobs WHERE id = $job");
		last if $state =~ /^(succeeded|failed|canceled)$/;
		usleep(50_000);
	}
	return $state;
}
my $t0 = time();
is(wait_job(sql(q{SELECT ml.batch_predict('live', 'big', 'timing_out', 'id', '{"workers": 2, "chunk_rows": 2000}')})),
	'succeeded', 'an uninterrupted batch job succeeds');
my $job_ms = int((time() - $t0) * 1000);
note("the batch job takes $job_ms ms uninterrupted");
for my $i (1 .. 4)
{
	my $job = sql(qq{SELECT ml.batch_predict('live', 'big', 'out$i', 'id', '{"workers": 2, "chunk_rows": 2000}')});
	usleep(int(rand(0.8 * $job_ms)) * 1000);
	if ($i % 2)
	{
		sql("SELECT ml.cancel_job($job)");
	}
	else
	{
		sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pgmaker job worker'});
	}
	my $state = wait_job($job);
	like($state, qr/^(succeeded|failed|canceled)$/, "job $i ended ($state)");
	is(sql("SELECT count(*) FROM ml.job_parts WHERE job_id = $job AND status = 'running'"), '0',
		"job $i has no part left running");
	if ($state eq 'succeeded')
	{
		is(sql("SELECT count(*) FROM out$i"), '200000', "job $i wrote every key once");
	}
	else
	{
		is(sql("SELECT count(*) = count(DISTINCT id) FROM out$i"), 't', "job $i wrote no key twice");
	}
}
my $workers = '';
for (my $t = 0; $t < 100; $t++)
{
	$workers = sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgmaker job worker'});
	last if $workers eq '0';
	usleep(100_000);
}
is($workers, '0', 'no job worker left over');

# ---------------------------------------------------------------- the server
is(sql('SELECT 1'), '1', 'the server still answers');
my $log = slurp_file($node->logfile);
unlike($log, qr/was terminated by signal|PANIC/, 'no backend crashed');
is(sql(q{SELECT count(*) FROM ml.train('after', 'SELECT x1, x2, y FROM big WHERE id <= 500', 'y', 'linear')}), '1',
	'training works afterwards');

$node->stop;
done_testing();
