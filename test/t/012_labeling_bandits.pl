# test/t/012_labeling_bandits.pl
#
# Labeling and bandits under concurrent load: eight labelers under pgbench
# never get an item beyond its labelers_per_item nor the same item twice,
# and every answer is counted; two clients choosing and rewarding under
# pgbench lose no reward (each arm's state equals the sums over its
# rewarded decisions), and concurrent rewards of one decision reward it once.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('labeling');
$node->init;
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub pgbench
{
	my ($name, $clients, $transactions, $body) = @_;
	my $script = $node->basedir . "/$name.sql";
	open(my $fh, '>', $script) or die "could not write $script: $!";
	print $fh $body;
	close($fh);
	my ($out, $err) = run_command(
		[
			'pgbench', '-n', '-M', 'prepared', '-c', $clients, '-j', '2', '-t', $transactions,
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		]);
	return $out . $err;
}

sql(q{
	CREATE EXTENSION pgmaker;
	CREATE TABLE items AS SELECT g AS id, g % 7 AS x FROM generate_series(1, 3000) g;
	SELECT ml.create_labeling_job('one', 'items', 'id', '{"labels": ["a", "b"], "batch_size": 40}');
	SELECT ml.create_labeling_job('two', 'items', 'id', '{"labels": ["a", "b"], "batch_size": 40, "labelers_per_item": 2}');
});

# ---------------------------------------------------------------- 8 labelers
for my $job ('one', 'two')
{
	my $out = pgbench("label_$job", 8, 100, <<"EOS");
SELECT task_id FROM ml.next_label_task('$job', 'labeler' || :client_id) \\gset
SELECT ml.submit_label(:task_id, 'labeler' || :client_id, CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END);
EOS
	like($out, qr/number of transactions actually processed: 800\/800/, "$job: 8 labelers x 100 tasks ran");
	like($out, qr/number of failed transactions: 0 /, "$job: no failed transaction");
	is( sql(qq{SELECT count(*) FROM ml.label_tasks t JOIN ml.labeling_jobs j ON j.id = t.job_id
				WHERE j.name = '$job' AND t.label IS NOT NULL}),
		'800', "$job: 800 answers recorded");
	is( sql(qq{SELECT count(*) FROM (SELECT t.key FROM ml.label_tasks t JOIN ml.labeling_jobs j ON j.id = t.job_id
				WHERE j.name = '$job' GROUP BY t.key, j.labelers_per_item HAVING count(*) > j.labelers_per_item
				   OR count(DISTINCT t.labeler) < count(*)) s}),
		'0', "$job: no item beyond its labelers, none twice to one labeler");
	is( sql(qq{SELECT count(*) FROM ml.label_items i JOIN ml.labeling_jobs j ON j.id = i.job_id
				WHERE j.name = '$job' AND (i.assigned <> (SELECT count(*) FROM ml.label_tasks t WHERE t.job_id = i.job_id AND t.key = i.key)
				   OR i.answers <> (SELECT count(*) FROM ml.label_tasks t WHERE t.job_id = i.job_id AND t.key = i.key AND t.label IS NOT NULL))}),
		'0', "$job: every item's counters match its tasks");
	is(sql(qq{SELECT count(DISTINCT labeler) FROM ml.label_tasks t JOIN ml.labeling_jobs j ON j.id = t.job_id WHERE j.name = '$job'}),
		'8', "$job: all 8 labelers took part");
}
is(sql(q{SELECT sum(n_answers) FROM ml.labeled('two')}), '800', 'two: consolidation counts every answer');

# ---------------------------------------------------------------- bandits
sql(q{SELECT ml.create_bandit('load', ARRAY['a', 'b', 'c', 'd'], 'linucb', '{"dim": 3, "seed": 4}')});
my $out = pgbench('bandit', 2, 2000, <<'EOS');
\set u random(0, 1000)
\set v random(0, 1000)
SELECT decision_id FROM ml.choose('load', ARRAY[:u::float8 / 1000.0, :v::float8 / 1000.0, 0.5]::float8[]) \gset
SELECT ml.reward('load', :decision_id, (:u::float8 + :v::float8) / 2000.0);
EOS
like($out, qr/number of transactions actually processed: 4000\/4000/, 'bandit: 2 clients x 2000 choose+reward ran');
like($out, qr/number of failed transactions: 0 /, 'bandit: no failed transaction');
is(sql(q{SELECT sum(pulls) FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id WHERE b.name = 'load'}),
	'4000', 'bandit: every reward counted');
is( sql(q{
	SELECT count(*) FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id,
	  LATERAL (SELECT array_agg(v ORDER BY k) AS expect FROM (
	      SELECT i * 4 + j + 1 AS k,
	             (CASE WHEN i = j THEN 1 ELSE 0 END) + coalesce(sum((d.context || 1.0::float8)[i + 1] * (d.context || 1.0::float8)[j + 1]), 0) AS v
	        FROM generate_series(0, 3) i CROSS JOIN generate_series(0, 3) j
	        LEFT JOIN ml.bandit_decisions d ON d.bandit_id = a.bandit_id AND d.arm_index = a.arm_index AND d.reward IS NOT NULL
	       GROUP BY i, j
	      UNION ALL
	      SELECT 17 + i, coalesce(sum(d.reward * (d.context || 1.0::float8)[i + 1]), 0)
	        FROM generate_series(0, 3) i
	        LEFT JOIN ml.bandit_decisions d ON d.bandit_id = a.bandit_id AND d.arm_index = a.arm_index AND d.reward IS NOT NULL
	       GROUP BY i) s) e
	 WHERE b.name = 'load'
	   AND EXISTS (SELECT 1 FROM generate_series(1, 20) k WHERE abs(a.state[k] - e.expect[k]) > 1e-6 * greatest(1, abs(e.expect[k])))}),
	'0', 'bandit: each arm\'s state is the sums over its rewarded decisions');

# two sessions reward one decision at once: one succeeds, one is refused
my $d = sql(q{SELECT decision_id FROM ml.choose('load', ARRAY[0.1, 0.2, 0.3]::float8[])});
my $s1 = $node->background_psql('postgres');
$s1->query_safe('BEGIN');
$s1->query_safe("SELECT ml.reward('load', $d, 1)");
my ($ret, $stdout, $stderr);
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', "SELECT ml.reward('load', $d, 1)" ],
	'>', \$stdout, '2>', \$stderr);
sleep 1;
$s1->query_safe('COMMIT');
$h->finish;
like($stderr, qr/decision $d of bandit "load" was already rewarded/, 'concurrent reward of one decision: the second is refused');
is(sql(qq{SELECT count(*) FROM ml.bandit_decisions WHERE id = $d AND reward = 1}), '1', 'the decision is rewarded once');
is(sql(q{SELECT sum(pulls) FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id WHERE b.name = 'load'}),
	'4001', 'and counted once');
$s1->quit;

$node->stop;
done_testing();
