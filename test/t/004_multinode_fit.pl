# test/t/004_multinode_fit.pl
#
# One least-squares fit over a table split across servers, the way a
# distributed engine runs an aggregate with a combine function: two worker
# servers each hold part of diabetes and compute ml.linear_fit_state over
# their rows (in parallel workers, as partial aggregates); a coordinator
# fetches the states through dblink and merges them with
# ml.linear_fit_merge.  The result must equal ml.linear_fit over all the
# rows on one server, and the workers must have planned a Partial
# Aggregate.  Then logistic regression the same way, a Newton step per
# round (ml.logistic_step_state on the workers, ml.logistic_step_merge on
# the coordinator), against ml.logistic_step on one server.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Cwd qw(abs_path);

my $datadir = abs_path(($ENV{TESTDIR} // '.') . '/data');
die "data directory $datadir has no diabetes.csv" unless -f "$datadir/diabetes.csv";
my $diabetes_csv = "$datadir/diabetes.csv";

my $x = 'ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6]';

# A server with pgmaker and diabetes's rows for which filter holds
# (the row's ordinal in the file).
sub start_node
{
	my ($name, $filter) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
	$node->start;
	$node->safe_psql(
		'postgres', qq{
		CREATE EXTENSION pgmaker;
		CREATE TEMP TABLE raw (
			age float8, sex float8, bmi float8, bp float8, s1 float8, s2 float8,
			s3 float8, s4 float8, s5 float8, s6 float8, progression float8);
		COPY raw FROM '$diabetes_csv' WITH (FORMAT csv, HEADER true);
		CREATE TABLE diabetes AS
			SELECT * FROM (SELECT r.*, row_number() OVER () AS ordinal FROM raw r) o
			 WHERE $filter;
		ANALYZE diabetes;
	});
	return $node;
}

my $all = start_node('single', 'true');
my $w1 = start_node('worker1', 'ordinal % 2 = 0');
my $w2 = start_node('worker2', 'ordinal % 2 = 1');

is($w1->safe_psql('postgres', 'SELECT count(*) FROM diabetes')
	  + $w2->safe_psql('postgres', 'SELECT count(*) FROM diabetes'),
	442, 'the workers hold every row once between them');

# the workers run their part as a partial aggregate under Gather
my $plan = $w1->safe_psql(
	'postgres', qq{
	SET max_parallel_workers_per_gather = 2;
	SET parallel_setup_cost = 0;
	SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0;
	EXPLAIN (COSTS OFF) SELECT ml.linear_fit_state(progression, $x) FROM diabetes;
});
like($plan, qr/Partial Aggregate/, 'a worker computes its state as a partial aggregate');

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION pgmaker; CREATE EXTENSION dblink;');

my $state_query = "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; "
  . "SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; "
  . "SELECT ml.linear_fit_state(progression, $x) FROM diabetes";
# connstr() quotes the database name, which would end the SQL literal
my $c1 = 'host=' . $w1->host . ' port=' . $w1->port . ' dbname=postgres';
my $c2 = 'host=' . $w2->host . ' port=' . $w2->port . ' dbname=postgres';
my $merged = $coord->safe_psql(
	'postgres', qq{
	SELECT (f).n, (f).rank, (f).intercept, array_to_string((f).coefficients, ','), (f).r2, (f).rmse
	  FROM (SELECT ml.linear_fit_merge(s) AS f
	          FROM (SELECT s FROM dblink('$c1', \$q\$$state_query\$q\$) AS t(s bytea)
	                UNION ALL
	                SELECT s FROM dblink('$c2', \$q\$$state_query\$q\$) AS t(s bytea)) states) m;
});
my $single = $all->safe_psql(
	'postgres', qq{
	SELECT (f).n, (f).rank, (f).intercept, array_to_string((f).coefficients, ','), (f).r2, (f).rmse
	  FROM (SELECT ml.linear_fit(progression, $x) AS f FROM diabetes) m;
});

my @m = split /\|/, $merged;
my @s = split /\|/, $single;
is($m[0], 442, 'the merged fit saw every row');
is($m[1], $s[1], 'the same rank');
ok(abs($m[2] - $s[2]) <= 1e-9 * abs($s[2]), "the same intercept ($m[2] vs $s[2])");
my @mc = split /,/, $m[3];
my @sc = split /,/, $s[3];
is(scalar(@mc), 10, 'ten coefficients');
my $worst = 0;
for my $j (0 .. $#sc)
{
	my $rel = abs($mc[$j] - $sc[$j]) / abs($sc[$j]);
	$worst = $rel if $rel > $worst;
}
ok($worst <= 1e-9, "the same coefficients (worst relative difference $worst)");
ok(abs($m[4] - $s[4]) <= 1e-12, 'the same r2');
ok(abs($m[5] - $s[5]) <= 1e-9 * $s[5], 'the same rmse');
# and the reference: scikit-learn's LinearRegression on diabetes, s5 = 68.4831250 (9 digits)
ok(abs($mc[8] - 68.4831250) / 68.4831250 < 1e-6, 'the merged s5 coefficient matches the reference');

# Logistic regression, one Newton step per round: each worker computes
# ml.logistic_step_state at the current point over its rows, and the
# coordinator merges the states and takes the step.  The loop runs in the
# client, as a user's would; it must reach the single server's fit.
my $y = '(progression > 140)::int';

# Runs Newton's method with step (point -> "intercept|coefficients|n|gradient").
sub newton
{
	my ($step) = @_;
	my ($b, $w) = ('NULL', 'NULL');
	my ($n, $gradient, $rounds) = (0, 1, 0);
	while ($gradient >= 1e-12 && $rounds < 30)
	{
		my ($i, $c);
		($i, $c, $n, $gradient) = split /\|/, $step->($b, $w);
		($b, $w) = ("${i}::float8", "'{$c}'::float8[]");
		$rounds++;
	}
	return ($b, $w, $n, $gradient, $rounds);
}

my @lm = newton(
	sub {
		my ($b, $w) = @_;
		my $q = "SELECT ml.logistic_step_state($y, $x, $b, $w, 0.001) FROM diabetes";
		return $coord->safe_psql(
			'postgres', qq{
			SELECT (f).intercept, array_to_string((f).coefficients, ','), (f).n, (f).gradient
			  FROM (SELECT ml.logistic_step_merge(s) AS f
			          FROM (SELECT s FROM dblink('$c1', \$q\$$q\$q\$) AS t(s bytea)
			                UNION ALL
			                SELECT s FROM dblink('$c2', \$q\$$q\$q\$) AS t(s bytea)) states) m;
		});
	});
my @ls = newton(
	sub {
		my ($b, $w) = @_;
		return $all->safe_psql(
			'postgres', qq{
			SELECT (f).intercept, array_to_string((f).coefficients, ','), (f).n, (f).gradient
			  FROM (SELECT ml.logistic_step($y, $x, $b, $w, 0.001) AS f FROM diabetes) m;
		});
	});
is($lm[2], 442, 'the merged Newton steps saw every row');
ok($lm[3] < 1e-12 && $ls[3] < 1e-12, "both loops converged ($lm[4] and $ls[4] rounds)");
is($lm[4], $ls[4], 'in the same number of rounds');
my ($mb) = $lm[0] =~ /^(\S+)::/;
my ($sb) = $ls[0] =~ /^(\S+)::/;
ok(abs($mb - $sb) <= 1e-9 * abs($sb), "the same logistic intercept ($mb vs $sb)");
my @lmc = split /,/, ($lm[1] =~ /\{(.*)\}/)[0];
my @lsc = split /,/, ($ls[1] =~ /\{(.*)\}/)[0];
is(scalar(@lmc), 10, 'ten logistic coefficients');
$worst = 0;
for my $j (0 .. $#lsc)
{
	my $d = abs($lmc[$j] - $lsc[$j]) / (abs($lsc[$j]) > 1 ? abs($lsc[$j]) : 1);
	$worst = $d if $d > $worst;
}
ok($worst <= 1e-9, "the same logistic coefficients (worst difference $worst)");

# The profile statistics across the two workers: each computes the partial
# states of ml.numeric_stats and ml.approx_distinct over its rows, the
# coordinator merges them.  Below 100,000 values the sample is every value,
# so the merged statistics equal the single server's: the counts, the
# quantiles and the histogram exactly, the moments to 1e-12; sketches merge
# by their registers, so the estimate is the same number.
my $stats_query = "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; "
  . "SET min_parallel_table_scan_size = 0; SET parallel_tuple_cost = 0; "
  . "SELECT ml.numeric_stats_state(bmi), ml.approx_distinct_state(bmi) FROM diabetes";
my $stats_cols = "(s).count, (s).min, (s).max, (s).p01, (s).p25, (s).p50, (s).p75, (s).p99, "
  . "(s).outliers, (s).sample_size, (s).histogram, (s).mean, (s).stddev, (s).skewness, d";
my $ms = $coord->safe_psql(
	'postgres', qq{
	SELECT $stats_cols
	  FROM (SELECT ml.numeric_stats_merge(n) AS s, ml.approx_distinct_merge(h) AS d
	          FROM (SELECT n, h FROM dblink('$c1', \$q\$$stats_query\$q\$) AS t(n bytea, h bytea)
	                UNION ALL
	                SELECT n, h FROM dblink('$c2', \$q\$$stats_query\$q\$) AS t(n bytea, h bytea)) states) m;
});
my $ss = $all->safe_psql(
	'postgres', qq{
	SELECT $stats_cols
	  FROM (SELECT ml.numeric_stats(bmi) AS s, ml.approx_distinct(bmi) AS d FROM diabetes) m;
});
my @mst = split /\|/, $ms;
my @sst = split /\|/, $ss;
is(join('|', @mst[0 .. 10]), join('|', @sst[0 .. 10]),
	'merged profile statistics: the same counts, range, quantiles, outliers and histogram');
is($mst[0], 442, 'the merged statistics saw every value');
for my $i (11 .. 13)
{
	ok(abs($mst[$i] - $sst[$i]) <= 1e-12 * abs($sst[$i]), "moment $i: $mst[$i] vs $sst[$i]");
}
is($mst[14], $sst[14], "the same distinct estimate ($mst[14])");
ok(abs($sst[14] - 163) <= 2, 'the estimate is within 2 of the 163 distinct values');

$_->stop for ($coord, $w1, $w2, $all);
done_testing();
