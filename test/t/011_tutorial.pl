# test/t/011_tutorial.pl
#
# docs/tutorial.md, run as a reader would: its SQL blocks, in order, with
# psql against a server that preloads pgmaker, with psql's datadir set to
# the sample data.  Any error fails the test, so the tutorial never rots.

use strict;
use warnings;

use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{PGMAKER_ROOT} // Cwd::getcwd() . '/..';
my $tutorial = "$root/docs/tutorial.md";
open my $fh, '<', $tutorial or die "$tutorial: $!";
my $text = do { local $/; <$fh> };
close $fh;
my @blocks = $text =~ /^```sql\n(.*?)^```\n/msg;
cmp_ok(scalar(@blocks), '>=', 8, 'the tutorial has its SQL blocks (' . scalar(@blocks) . ')');

my $node = PostgreSQL::Test::Cluster->new('tutorial');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgmaker'
ml.database = 'postgres'
ml.naptime = '1s'
max_worker_processes = 16
});
$node->start;

my $datadir = Cwd::getcwd() . '/data';
my $n = 0;
for my $block (@blocks)
{
	$n++;
	my ($ret, $out, $err) = $node->psql('postgres', $block,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', "datadir=$datadir" ]);
	my ($first) = $block =~ /^(?:--[^\n]*\n)*\s*([^\n]*)/;
	is($ret, 0, "block $n runs: $first") or diag("psql said:\n$err");
}
my $deployed = $node->safe_psql('postgres', q{SELECT count(*) FROM ml.deployments});
cmp_ok($deployed, '>=', 1, 'the tutorial left models deployed');
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM ml.monitor_runs WHERE violations > 0}), 't',
	'its monitor found the drift it shows');
is($node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM patient_scores) = (SELECT count(*) FROM patients)}), 't',
	'its batch prediction scored every patient');
is($node->safe_psql('postgres', q{SELECT string_agg(kind || ' ' || status, ', ' ORDER BY id) FROM ml.jobs}),
	'batch_predict succeeded, train succeeded', 'its jobs succeeded');

$node->stop;
done_testing();
