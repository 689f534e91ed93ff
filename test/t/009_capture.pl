# test/t/009_capture.pl
#
# Prediction capture on a server that preloads pgmaker: ml.set_capture's
# rate, the captured inputs and outputs that the launcher stores, drops
# counted when the ring is full, capture under pgbench load without errors,
# and ml.monitor over the captured predictions of a window.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use PgmakerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('capture');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgmaker'
ml.database = 'postgres'
ml.naptime = '200ms'
ml.capture_buffer = '64kB'
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub err { return PgmakerTest::error_of($node, @_); }

sub wait_for { return PgmakerTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION pgmaker;
	CREATE ROLE plain LOGIN;
	GRANT ml_developer TO plain;
	CREATE TABLE t AS SELECT g AS id, (g % 100)::float8 AS x, (ARRAY['a', 'b'])[1 + g % 2] AS c,
	                         3 * (g % 100)::float8 + (g % 2) AS y FROM generate_series(1, 5000) g;
	ALTER TABLE t ADD PRIMARY KEY (id);
	CREATE TABLE wide AS SELECT g AS id, (g % 100)::float8 AS x, 'a' AS c, repeat('z', 4000) AS pad
	  FROM generate_series(1, 3000) g;
	SELECT model_id FROM ml.train('cap', 'SELECT x, c, y FROM t', 'y', 'linear');
});

like(err(q{SELECT ml.set_capture('cap', 1.5)}), qr/22023: rate must be between 0 and 1, not 1.5/, 'rate is checked');
like(err(q{SELECT ml.set_capture('cap', NULL)}), qr/22004: project and rate must not be NULL/, 'NULL rate');
like(err(q{SELECT ml.set_capture('nope', 1)}), qr/42704: project "nope" does not exist/, 'unknown project');
like(err(q{SELECT ml.set_capture('cap', 1)}, 'plain'), qr/42501: must be a member of role/, 'owners only');

# every call captured at rate 1, with its input and output
sql(q{SELECT ml.set_capture('cap', 1)});
is(sql(q{SELECT count(ml.predict('cap', t)) FROM t WHERE id <= 20}), '20', '20 predictions');
is(wait_for(q{SELECT count(*) FROM ml.captured}, '20'), '20', 'the launcher stored the 20 captures');
is(sql(q{SELECT count(*) FROM ml.captured k
          WHERE abs(k.output - ml.predict('cap', k.inputs::jsonb)) < 1e-9
            AND k.inputs::jsonb ?& ARRAY['x', 'c'] AND NOT k.inputs::jsonb ? 'id' AND json_typeof(k.inputs->'x') = 'number'}),
	'20', 'the model\'s input columns as JSON, and outputs as predicted');
is(sql(q{SELECT string_agg(DISTINCT k.inputs->>'c', ',') FROM ml.captured k}), 'a,b', 'text inputs as strings');
is(sql(q{SELECT project, capture_rate, stored, available FROM ml.capture_status}), 'cap|1|20|t',
	'ml.capture_status');

# a sample: rate 0.5 over 2000 calls
sql(q{SELECT ml.set_capture('cap', 0.5); TRUNCATE ml.capture_batches});
sql(q{SELECT count(ml.predict('cap', t)) FROM t WHERE id <= 200});
usleep(300_000);
for my $i (1 .. 9) { sql(q{SELECT count(ml.predict('cap', t)) FROM t WHERE id <= 200}); usleep(300_000); }
my $half = wait_for(q{SELECT (SELECT buffered_bytes FROM ml._capture_counters()) = 0}, 't');
my $n = sql(q{SELECT count(*) FROM ml.captured});
cmp_ok($n, '>=', 850, "rate 0.5: at least 850 of 2000 captured ($n)");
cmp_ok($n, '<=', 1150, "rate 0.5: at most 1150 of 2000 captured ($n)");

# a full ring drops and counts: 3000 wide rows in one statement, 64 kB of ring
sql(q{SELECT ml.set_capture('cap', 1); TRUNCATE ml.capture_batches});
my ($c0, $d0) = split /\|/, sql(q{SELECT captured, dropped FROM ml._capture_counters()});
sql(q{SELECT count(ml.predict('cap', w)) FROM wide w});
wait_for(q{SELECT buffered_bytes = 0 FROM ml._capture_counters()}, 't');
my ($c1, $d1) = split /\|/, sql(q{SELECT captured, dropped FROM ml._capture_counters()});
cmp_ok($d1 - $d0, '>', 0, 'a full ring drops captures (' . ($d1 - $d0) . ')');
is(($c1 - $c0) + ($d1 - $d0), 3000, 'every call is either captured or counted as dropped');
is(wait_for(q{SELECT count(*) FROM ml.captured}, $c1 - $c0), $c1 - $c0, 'every capture taken is stored');

# under pgbench load: no error, every call counted
sql(q{TRUNCATE ml.capture_batches});
($c0, $d0) = split /\|/, sql(q{SELECT captured, dropped FROM ml._capture_counters()});
my $script = PostgreSQL::Test::Utils::tempdir() . '/predict.sql';
open my $fh, '>', $script or die;
print $fh "\\set id random(1, 5000)\nSELECT ml.predict('cap', t) FROM t WHERE id = :id;\n";
close $fh;
my ($stdout, $stderr);
IPC::Run::run([ 'pgbench', '-n', '-M', 'prepared', '-c', '2', '-j', '2', '-T', '3', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres' ], '>', \$stdout, '2>', \$stderr);
like($stdout, qr/number of failed transactions: 0 /, 'pgbench: no failed transaction');
my ($tx) = $stdout =~ /number of transactions actually processed: (\d+)/;
wait_for(q{SELECT buffered_bytes = 0 FROM ml._capture_counters()}, 't');
($c1, $d1) = split /\|/, sql(q{SELECT captured, dropped FROM ml._capture_counters()});
is(($c1 - $c0) + ($d1 - $d0), $tx, "pgbench: all $tx calls captured or counted as dropped");
is(sql(q{SELECT count(*) FROM ml.captured}), $c1 - $c0, 'pgbench: the captures taken are stored');

# monitoring the captured predictions of a window
my @rows = split /\n/, sql(q{SELECT feature || ':' || "check" || ':' || coalesce(violated::text, 'null')
                                FROM ml.monitor('cap', NULL, '{"window": "1 hour"}') ORDER BY 1});
ok((grep { $_ eq '*:rows:false' } @rows), 'the monitor reads the captured rows');
is(scalar(grep { /:true$/ } @rows), 0, 'captured predictions like the training data: no violation');
is(sql(q{SELECT source FROM ml.monitor_runs ORDER BY id DESC LIMIT 1}), 'captured predictions of the last 1 hour',
	'the run names the window');
sleep(2);
is(sql(q{SELECT value || ':' || coalesce(violated::text, 'null') FROM ml.monitor('cap', NULL, '{"window": "1 second"}') WHERE "check" = 'rows'}),
	'0:null', 'a window without captures: a clear result, not an error');
like(err(q{SELECT * FROM ml.monitor('cap', NULL, '{"window": "-1 hour"}')}),
	qr/22023: option "window" must be a positive interval/, 'a negative window');
like(err(q{SELECT * FROM ml.monitor('cap', NULL, '{"window": "soon"}')}),
	qr/22007: invalid input syntax for type interval: "soon"/, 'a window that is no interval');

sql(q{SELECT ml.set_capture('cap', 0)});
is(sql(q{SELECT count(ml.predict('cap', t)) FROM t WHERE id <= 10}), '10', 'rate 0');
usleep(500_000);
is(sql(q{SELECT buffered_bytes FROM ml._capture_counters()}), '0', 'rate 0 captures nothing');

$node->stop;
done_testing();
