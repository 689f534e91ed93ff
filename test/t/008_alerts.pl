# test/t/008_alerts.pl
#
# Alerts on a server that preloads pgmaker: NOTIFY ml_alerts at once, and
# webhook deliveries by the alert sender after commit, with the channel's
# headers, retries with backoff, the channel owner's network rights, a
# failed job's alert, and row-level security on channels and alerts.  The
# webhooks are routes of the loopback fixture server
# (test/fixtures/http_fixture.py), which records what it receives.

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use FindBin;
use lib $FindBin::Bin;
use PgmakerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $base = PgmakerTest::start_fixture($tmp);

my $node = PostgreSQL::Test::Cluster->new('alerts');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pgmaker'
ml.database = 'postgres'
ml.naptime = '1s'
ml.http_allow = '$base/hook/plain/'
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgmaker;
	CREATE ROLE plain LOGIN;
	CREATE ROLE other LOGIN;
	GRANT ml_admin TO plain, other;
	GRANT CREATE ON SCHEMA public TO plain;
	CREATE TABLE t AS SELECT g::float8 AS x, (g % 7)::float8 AS z FROM generate_series(1, 50) g;
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub err { return PgmakerTest::error_of($node, @_); }

sub hook_log
{
	my ($name) = @_;
	my $res = HTTP::Tiny->new->get("$base/hook/$name/log");
	die "fixture log: $res->{status}" unless $res->{success};
	return decode_json($res->{content});
}

sub wait_for { return PgmakerTest::wait_for($node, @_); }

# ---------- channels ----------

sql(qq{SELECT ml.create_alert_channel('ops', '$base/hook/ops', '{"Authorization": "Bearer t0k"}')});
sql(qq{SELECT ml.create_alert_channel('flaky', '$base/hook/fail-2')});
sql(qq{SELECT ml.create_alert_channel('broken', '$base/nowhere')});
like(err(qq{SELECT ml.create_alert_channel('ops', '$base/hook/x')}),
	qr/42710: alert channel "ops" already exists/, 'a channel name is taken once');
like(err(qq{SELECT ml.create_alert_channel('x', '$base/hook/x', '{"X-A": "1\\r\\nX-B: 2"}')}),
	qr/22023: header "X-A" must not contain a line break/, 'headers cannot inject lines');
like(err(qq{SELECT ml.create_alert_channel('x', '$base/hook/x', '{"Bad Name": "1"}')}),
	qr/22023: invalid header name "Bad Name"/, 'header names are checked');
like(err(q{SELECT ml.create_alert_channel('x', 'file:///etc/passwd')}),
	qr/22023: alert channel URL must be an http:\/\/ or https:\/\/ URL/, 'only http(s) channels');
like(err(qq{SELECT ml.create_alert_channel('x', '$base/hook/ops')}, 'plain'),
	qr/42501: URL "[^"]+\/hook\/ops" is not allowed by ml.http_allow/,
	'a plain role needs ml.http_allow for its channel');
sql(qq{SET ROLE plain; SELECT ml.create_alert_channel('mine', '$base/hook/plain/mine')});
is(sql(q{SET ROLE other; SELECT count(*) FROM ml.alert_channels}), '0',
	'another role sees no channel (and no header)');
is(sql(q{SET ROLE plain; SELECT string_agg(name, ',') FROM ml.alert_channels}), 'mine',
	'a role sees its own channels only');
like(err(q{SELECT ml.test_alert_channel('ops')}, 'plain'), qr/42704: alert channel "ops" does not exist/,
	'a role cannot test another role\'s channel');

# ---------- NOTIFY and delivery ----------

my ($ret, $out, $stderr) = $node->psql('postgres',
	q{LISTEN ml_alerts; SELECT ml.test_alert_channel('ops');});
like($out, qr/Asynchronous notification "ml_alerts" with payload "\{.*"kind": "test".*"message": "test alert for channel ops"/,
	'the alert is notified on ml_alerts');
is(wait_for(q{SELECT delivery || ' ' || attempts || ' ' || http_status FROM ml.alert_status WHERE channel = 'ops'},
		'delivered 1 200'), 'delivered 1 200', 'the webhook received the alert');
my $log = hook_log('ops');
is(scalar(@$log), 1, 'posted once');
my $body = decode_json($log->[0]{body});
is($body->{kind} . '|' . $body->{details}{channel} . '|' . $body->{severity}, 'test|ops|info',
	'the body is the alert as JSON');
is($log->[0]{headers}{Authorization}, 'Bearer t0k', 'with the channel\'s headers');
like($log->[0]{headers}{'Content-Type'}, qr{^application/json}, 'as application/json');
is(scalar(@{ hook_log('plain/mine') }), 0, 'another role\'s channel received nothing');

sql(q{SELECT ml.test_alert_channel('flaky')});
is(wait_for(q{SELECT delivery || ' ' || attempts FROM ml.alert_status WHERE channel = 'flaky'}, 'delivered 3'),
	'delivered 3', 'a webhook that fails twice gets the alert at the third attempt');
is(scalar(@{ hook_log('fail-2') }), 3, 'three posts reached it');
is(sql(q{SELECT (delivered_at - raised_at) >= interval '6 seconds' FROM ml.alert_status WHERE channel = 'flaky'}),
	't', 'the attempts were spaced 2 and 4 seconds apart');

sql(q{SELECT ml.test_alert_channel('broken')});
is(wait_for(q{SELECT delivery || ' ' || attempts || ' ' || last_error FROM ml.alert_status WHERE channel = 'broken'},
		'pending 2 HTTP status 404'), 'pending 2 HTTP status 404', 'a failing webhook is retried, its error kept');
is(sql(q{SELECT next_attempt_at > now() + interval '1 second' FROM ml.alert_deliveries WHERE channel = 'broken'}),
	't', 'the next attempt waits');

# the owner's network rights apply when the alert is sent, not the worker's
sql(q{SET ROLE plain; UPDATE ml.alert_channels SET url = 'http://127.0.0.1:1/elsewhere' WHERE name = 'mine'});
sql(qq{SET ROLE plain; SELECT ml.test_alert_channel('mine')});
is(wait_for(q{SELECT attempts > 0 FROM ml.alert_status WHERE channel = 'mine'}, 't'), 't', 'attempted');
like(sql(q{SELECT last_error FROM ml.alert_status WHERE channel = 'mine'}),
	qr/URL "http:\/\/127.0.0.1:1\/elsewhere" is not allowed by ml.http_allow/,
	'a channel changed to a URL outside ml.http_allow is refused at sending');

# ---------- a failed job raises an alert ----------

sql(q{CREATE VIEW boom AS SELECT x, 1 / (z - z) AS y FROM t});
my $job = sql(q{SELECT ml.train_job('boomp', 'boom', '{"target": "y", "algorithm": "linear"}')});
is(wait_for(qq{SELECT status FROM ml.jobs WHERE id = $job}, 'failed'), 'failed', 'the job failed');
is(sql(qq{SELECT kind || '|' || severity || '|' || (details->>'job_id') FROM ml.alerts WHERE kind = 'job_failed'}),
	"job_failed|error|$job", 'a job_failed alert was raised');
like(sql(q{SELECT message FROM ml.alerts WHERE kind = 'job_failed'}), qr/train job \d+ failed: division by zero/,
	'its message says why');
is(wait_for(q{SELECT count(*) FROM ml.alert_status WHERE kind = 'job_failed' AND delivery = 'delivered'}, '2'),
	'2', 'delivered to both working channels of the owner');
ok((grep { decode_json($_->{body})->{kind} eq 'job_failed' } @{ hook_log('ops') }), 'the webhook got it');
is(sql(q{SET ROLE other; SELECT count(*) FROM ml.alerts}), '0', 'another role sees none of the alerts');
like(err(q{INSERT INTO ml.alerts (kind, severity, owner, message) VALUES ('x', 'info', 'other', 'm')}, 'other'),
	qr/42501: permission denied for table alerts/, 'roles do not write alerts');

is(sql(q{SELECT ml.drop_alert_channel('broken'), ml.drop_alert_channel('broken')}), 't|f', 'drop_alert_channel');
is(sql(q{SELECT count(*) FROM ml.alert_deliveries WHERE channel = 'broken'}), '0', 'its deliveries went with it');

# ---------- a batch prediction by a container gets whole batches ----------

sql(q{CREATE TABLE lin AS SELECT g AS id, g::float8 AS x, 2 * g::float8 + 1 AS y FROM generate_series(1, 300) g});
sql(qq{SELECT * FROM ml.register_endpoint('ep', '$base', '{"source": "lin", "target": "y", "batch_size": 1000}')});
my $before = scalar(@{ decode_json(HTTP::Tiny->new->get("$base/invocations/log")->{content}) });
my $bjob = sql(q{SELECT ml.batch_predict('ep', 'lin', 'lin_pred', 'id', '{"chunk_rows": 100, "batch_size": 40}')});
is(wait_for(qq{SELECT status FROM ml.jobs WHERE id = $bjob}, 'succeeded'), 'succeeded', 'batch prediction by a container');
is(sql(q{SELECT count(*), count(*) FILTER (WHERE prediction = 2 * id + 1) FROM lin_pred}), '300|300',
	'every row predicted, by the container');
my @sizes = @{ decode_json(HTTP::Tiny->new->get("$base/invocations/log")->{content}) };
is(join(',', @sizes[$before .. $#sizes]), '40,40,20,40,40,20,40,40,20',
	'the rows went 40 at a time, per chunk of 100');

# batch outputs count as logged predictions for model quality
my $ljob = sql(q{SELECT ml.batch_predict('ep', 'lin', 'lin_pred2', 'id', '{"chunk_rows": 120, "log_predictions": true}')});
is(wait_for(qq{SELECT status FROM ml.jobs WHERE id = $ljob}, 'succeeded'), 'succeeded', 'a logged batch prediction');
is(sql(q{SELECT count(*), count(*) FILTER (WHERE prediction = 2 * (inputs->>'x')::float8 + 1) FROM ml.prediction_log WHERE project = 'ep'}),
	'300|300', 'every batch prediction is in ml.prediction_log with its inputs');
sql(q{INSERT INTO ml.ground_truth (project, key, label) SELECT 'ep', id::text, (2 * x + 2)::text FROM lin});
is(sql(q{SELECT n, metrics->>'rmse', metrics->>'mae' FROM ml.model_quality('ep', now() - interval '1 hour', '1 day')}),
	'300|1|1', 'model quality over the batch predictions and the recorded outcomes');

# ---------- scheduled monitoring: drift triggers a retraining that is promoted ----------

sql(q{
	CREATE TABLE d_live AS SELECT (g % 100)::float8 AS x, 2 * (g % 100)::float8 + 1 AS y FROM generate_series(1, 2000) g;
	SELECT model_id FROM ml.train('drift', 'd_live', 'y', 'linear');
});
my $live0 = sql(q{SELECT live_model FROM ml.overview WHERE project = 'drift'});
sql(q{SELECT ml.schedule_retrain('drift', '1 hour', 'd_live', '{"target": "y", "algorithm": "linear"}')});
like(err(q{SELECT ml.schedule_monitor('drift', '1 second', 'd_live', '{"on_violation": "later"}')}),
	qr/22023: option "on_violation" must be "alert" or "retrain"/, 'schedule_monitor: on_violation is checked');
like(err(q{SELECT ml.schedule_monitor('drift', '0.5 seconds', 'd_live')}),
	qr/22023: every must be at least 1 second, not 00:00:00.5/, 'schedule_monitor: the interval is checked');
my $msched = sql(q{SELECT ml.schedule_monitor('drift', '1 second', 'd_live', '{"on_violation": "retrain"}')});
my $first = wait_for(qq{SELECT count(*) > 0 FROM ml.jobs WHERE schedule_id = $msched AND status = 'succeeded'}, 't');
is($first, 't', 'a monitoring job ran');
is(sql(qq{SELECT result->>'violations', result->>'retrain_job_id' IS NULL FROM ml.jobs
           WHERE schedule_id = $msched AND status = 'succeeded' ORDER BY id LIMIT 1}),
	'0|t', 'no drift: no violation, no retraining');

# the world changes: x moves up and y follows another line
sql(q{UPDATE d_live SET x = x + 200, y = 3 * (x + 200) - 7});
is(wait_for(qq{SELECT count(*) > 0 FROM ml.jobs WHERE schedule_id = $msched AND status = 'succeeded'
                 AND (result->>'violations')::int > 0 AND result->>'retrain_job_id' IS NOT NULL}, 't'),
	't', 'the drift is found and the retraining schedule runs');
my $rjob = sql(qq{SELECT (result->>'retrain_job_id') FROM ml.jobs WHERE schedule_id = $msched
                   AND result->>'retrain_job_id' IS NOT NULL ORDER BY id LIMIT 1});
sql(qq{SELECT ml.unschedule($msched)});
is(wait_for(qq{SELECT status FROM ml.jobs WHERE id = $rjob}, 'succeeded'), 'succeeded', 'the retraining job succeeded');
isnt(sql(q{SELECT live_model FROM ml.overview WHERE project = 'drift'}), $live0,
	'the retrained model passed the gate and is live');
like(sql(q{SELECT string_agg(DISTINCT r->>'check', ',') FROM ml.monitor_runs m, jsonb_array_elements(m.results) r
            WHERE m.project_id = (SELECT id FROM ml.projects WHERE name = 'drift') AND (r->>'violated')::boolean}),
	qr/out_of_range.*psi/, 'the monitor runs recorded the drift');
is(wait_for(q{SELECT count(*) > 0 FROM ml.alert_status WHERE kind = 'monitor' AND project = 'drift' AND delivery = 'delivered'}, 't'),
	't', 'the drift alert reached the webhook');

$node->stop;
done_testing();
