# test/t/007_http.pl
#
# ml.load and the HTTP client against a loopback fixture server
# (test/fixtures/http_fixture.py): CSV, gzip and JSON lines with inferred
# types, the modes, malformed lines (error with the line number, or skipped
# and counted), the access rules of ml.http_allow and file://, redirects,
# HTTP errors, timeouts, cancellation, the size cap, and S3 requests whose
# AWS Signature Version 4 the fixture checks with botocore.

use strict;
use warnings;

use File::Copy;
use FindBin;
use lib $FindBin::Bin;
use PgmakerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $data = "$tmp/data";
mkdir $data or die "mkdir $data: $!";
copy('data/iris.csv', "$data/iris.csv") or die "copy iris.csv: $!";
system("gzip -c '$data/iris.csv' > '$data/iris.csv.gz'") == 0 or die "gzip failed";

sub write_file
{
	my ($name, $text) = @_;
	open my $fh, '>', "$data/$name" or die "$name: $!";
	print $fh $text;
	close $fh;
}

write_file('events.jsonl', join("\n",
	'{"id": 1, "name": "a", "ok": true, "day": "2024-01-02", "x": 1.5, "tags": [1, 2]}',
	'{"id": 2, "name": "b\"q", "ok": false, "day": "2024-02-29", "x": null}',
	'',
	'{"id": 3, "day": "2024-03-01", "x": 2, "ok": true}',
	'not json',
	'{"id": 5, "unknown": 1}',
	'{"id": "six", "name": "f"}',
	'{"id": 7, "name": "g", "x": 7.25}',
	'{"id": 9, "surprise": true}') . "\n");
write_file('bad.csv', "a,b,c\n1,2,3\n4,5\n6,x,7\n\"8\",\"9\",\"10\"\n11,12,13,14\n");
write_file('semi.csv', "1;\"x;y\";NA\n2;\"say \"\"hi\"\"\";4.5\n3;NA;NA\n");
write_file('types.csv', "i,f,b,d,ts,t\n1,1.5,true,2024-01-31,2024-01-31 10:00:00+00,a\n"
	  . "-2,2,false,2024-02-29,2024-02-29T23:59:59Z,1\n,,,,,\n");
write_file('badtype.csv', "a,b\n1,2\n3,4\n5,x\n");
write_file('crlf.csv', "a,b\r\n1,2\r\n3,4\r\n");
write_file('quoted.csv', "k,v\n1,\"line one\nline two\"\n2,\"a,b\"\n");

my $base = PgmakerTest::start_fixture($data);
my ($port) = $base =~ /:(\d+)$/;

my $node = PostgreSQL::Test::Cluster->new('http');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgmaker;
	CREATE ROLE plain LOGIN;
	CREATE ROLE other LOGIN;
	GRANT ml_admin TO plain, other;
	GRANT CREATE ON SCHEMA public TO plain, other;
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub err { return PgmakerTest::error_of($node, @_); }

# ---------- CSV, gzip, inferred types, modes ----------

is(sql("SELECT ml.load('$base/data/iris.csv', 'iris')"), '150', 'CSV: 150 rows loaded');
is(sql(q{SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
         FROM information_schema.columns WHERE table_name = 'iris'}),
	'sepal_length double precision, sepal_width double precision, petal_length double precision, '
	  . 'petal_width double precision, species text',
	'CSV: columns from the header, types inferred');
is(sql("SELECT round(avg(sepal_length)::numeric, 6), count(DISTINCT species) FROM iris"),
	'5.843333|3', 'CSV: values as in the file');

is(sql("SELECT ml.load('$base/data/iris.csv.gz', 'iris_gz')"), '150', 'gzip: detected and inflated');
is(sql("SELECT count(*) FROM (SELECT * FROM iris EXCEPT ALL SELECT * FROM iris_gz) d"), '0',
	'gzip: the same rows as the plain file');

is(sql("SELECT ml.load('$base/data/iris.csv', 'iris')"), '150', 'mode append (default): appends');
is(sql("SELECT count(*) FROM iris"), '300', 'append: 300 rows');
is(sql(q{SELECT ml.load('} . $base . q{/data/iris.csv', 'iris', options => '{"mode": "replace"}')}),
	'150', 'mode replace');
is(sql("SELECT count(*) FROM iris"), '150', 'replace: the old rows are gone');
like(err(q{SELECT ml.load('} . $base . q{/data/iris.csv', 'iris', options => '{"mode": "create"}')}),
	qr/42P07: relation "iris" already exists/, 'mode create refuses an existing table');

is(sql("SELECT ml.load('$base/data/types.csv', 'typed')"), '3', 'types: loaded');
is(sql(q{SELECT string_agg(data_type, ', ' ORDER BY ordinal_position)
         FROM information_schema.columns WHERE table_name = 'typed'}),
	'bigint, double precision, boolean, date, timestamp with time zone, text',
	'types: bigint, float8, boolean, date, timestamptz and text inferred');
is(sql("SELECT count(*) FILTER (WHERE i IS NULL AND f IS NULL AND b IS NULL AND t IS NULL), sum(i), max(d) FROM typed"),
	'1|-1|2024-02-29', 'types: empty fields are NULL');

is(sql(q{SELECT ml.load('} . $base . q{/data/semi.csv', 'semi', 'csv',
        '{"header": false, "delimiter": ";", "null": "NA"}')}), '3', 'options: delimiter, null, no header');
is(sql("SELECT string_agg(format('%s|%s|%s', column1, column2, column3), ' ; ' ORDER BY column1) FROM semi"),
	'1|x;y| ; 2|say "hi"|4.5 ; 3||', 'options: quoted delimiters and quotes, NA as NULL, column1..3');

is(sql("SELECT ml.load('$base/data/quoted.csv', 'quoted')"), '2', 'CSV: a quoted field spans lines');
is(sql("SELECT v FROM quoted WHERE k = 1"), "line one\nline two", 'CSV: the line break is data');

# ---------- JSON lines ----------

like(err("SELECT ml.load('$base/data/events.jsonl', 'events')"),
	qr/22P04: malformed JSON line at line 5 of "[^"]+events.jsonl": not valid JSON/,
	'JSON lines: a bad line is an error with its line number');
is(sql("SELECT count(*) FROM pg_class WHERE relname = 'events'"), '0',
	'JSON lines: the failed load created no table');
my ($ret, $out, $notice) = $node->psql('postgres',
	q{SELECT ml.load('} . $base . q{/data/events.jsonl', 'events',
	                   options => '{"on_error": "skip", "sample_rows": 5}')});
is($out, '5', 'JSON lines: on_error skip loads the good lines');
like($notice, qr/skipped 3 malformed lines.*\n.*line 5: not valid JSON/,
	'JSON lines: the skipped lines (not JSON, a wrong type, a key not in the sample) are counted, the first named');
is(sql(q{SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
         FROM information_schema.columns WHERE table_name = 'events'}),
	'id bigint, name text, ok boolean, day date, x double precision, tags text, unknown bigint',
	'JSON lines: columns in the order the keys appear, types inferred');
is(sql("SELECT string_agg(format('%s:%s:%s:%s', id, name, x, tags), ' ' ORDER BY id) FROM events"),
	'1:a:1.5:[1, 2] 2:b"q:: 3::2: 5::: 7:g:7.25:', 'JSON lines: values, escapes, nulls and nested values');

# ---------- malformed CSV ----------

like(err("SELECT ml.load('$base/data/bad.csv', 'bad')"),
	qr/22P04: missing data for column "c"\nCONTEXT:  COPY bad, line 3: "4,5"/,
	'CSV: a short line is COPY\'s error, with its line number in the file');
like(err(q{SELECT ml.load('} . $base . q{/data/badtype.csv', 'badtype', options => '{"sample_rows": 2}')}),
	qr/22P02: invalid input syntax for type bigint: "x"\nCONTEXT:  COPY badtype, line 4, column b: "x"/,
	'CSV: a value of the wrong type, with its line and column');
is(sql("SELECT ml.load('$base/data/crlf.csv', 'crlf')"), '2', 'CSV: CRLF line ends');
is(sql(q{SELECT ml.load('} . $base . q{/data/crlf.csv', 'crlf2', options => '{"on_error": "skip"}')}), '2',
	'CSV: CRLF line ends when checking each record');
is(sql("SELECT string_agg(a || ':' || b, ' ' ORDER BY a) FROM crlf"), '1:2 3:4', 'CSV: CRLF values');
($ret, $out, $notice) = $node->psql('postgres',
	q{SELECT ml.load('} . $base . q{/data/bad.csv', 'bad', options => '{"on_error": "skip", "sample_rows": 1}')});
is($out, '2', 'CSV: on_error skip keeps the two good lines');
like($notice, qr/skipped 3 malformed lines/, 'CSV: three lines skipped and counted');
is(sql("SELECT string_agg(format('%s-%s-%s', a, b, c), ' ' ORDER BY a) FROM bad"), '1-2-3 8-9-10',
	'CSV: the good lines, quoted or not');
is(sql("SELECT count(*) FROM bad"), '2', 'CSV: no partial rows');
like(err(q{SELECT ml.load('} . $base . q{/data/bad.csv', 'bad', options => '{"mode": "append"}')}),
	qr/22P04: missing data for column "c"/, 'append: a malformed line fails the load');
is(sql("SELECT count(*) FROM bad"), '2', 'append: a failed load adds no rows');

like(err(q{SELECT ml.load('} . $base . q{/data/iris.csv', 'x', options => '{"colour": 1}')}),
	qr/22023: unknown option "colour"/, 'unknown option');
like(err("SELECT ml.load('$base/data/iris.csv', 'x', 'parquet')"),
	qr/22023: unknown format "parquet"/, 'unknown format');
like(err("SELECT ml.load(NULL, 'x')"), qr/22004: url must not be NULL/, 'NULL url');

# ---------- HTTP errors, timeouts, cancel, size cap ----------

like(err("SELECT ml.load('$base/status/404', 'x')"),
	qr/08000: could not fetch "[^"]+\/status\/404": HTTP status 404\nDETAIL:  The response began: fixture says 404/,
	'404: the status and the start of the body');
like(err("SELECT ml.load('$base/status/500', 'x')"), qr/HTTP status 500/, 'status 500');
like(err("SELECT ml.load('http://127.0.0.1:1/x.csv', 'x')"),
	qr/08006: could not fetch "http:\/\/127.0.0.1:1\/x.csv": .*(connect|Connection refused)/i,
	'unreachable host');
like(err("SET ml.http_timeout = '500ms'; SELECT ml.load('$base/slow?seconds=5', 'x')"),
	qr/08006: could not fetch "[^"]+\/slow": timed out \(no data for 500 ms\)/, 'ml.http_timeout');

my $t0 = time();
like(err("SET statement_timeout = '1s'; SELECT ml.load('$base/drip?seconds=30', 'x')"),
	qr/57014: canceling statement due to statement timeout/, 'statement_timeout stops a transfer');
cmp_ok(time() - $t0, '<', 10, 'the transfer stopped long before it would have ended');
is(sql("SELECT 1"), '1', 'the server is fine after the cancel');

like(err("SET ml.http_max_bytes = '100kB'; SELECT ml.load('$base/big?bytes=1000000', 'x')"),
	qr/54000: could not fetch "[^"]+\/big": the response is larger than ml.http_max_bytes \(100 kB\)/,
	'ml.http_max_bytes');
is(sql("SELECT ml.load('$base/big?bytes=200000', 'big')"), '11111', 'a body under the cap loads');

like(err("SELECT ml.load('$base/redirect?to=/data/iris.csv', 'redirected')"), qr/no error/,
	'a redirect is followed');
is(sql("SELECT count(*) FROM redirected"), '150', 'redirect: the target was loaded');

# ---------- access rules ----------

like(err("SELECT ml.load('$base/data/iris.csv', 'p1')", 'plain'),
	qr/42501: network access is not allowed for role "plain"/, 'plain role: no network by default');
like(err("SELECT ml.load('file://$data/iris.csv', 'p1')", 'plain'),
	qr/42501: permission denied to read "file:/, 'plain role: no file://');
like(err("SELECT ml.load('ftp://127.0.0.1/x', 'p1')", 'plain'),
	qr/0A000: unsupported URL scheme "ftp"/, 'ftp is refused');
like(err("DO \$\$ BEGIN PERFORM ml.load(NULL, 'x'); EXCEPTION WHEN others THEN NULL; END \$\$; "
	  . "SET ml.http_allow = 'http://x/'", 'plain'),
	qr/42501: permission denied to set parameter "ml.http_allow"/, 'ml.http_allow is superuser-only');
like(err("SET ml.http_allow = '$base/'; SELECT ml.load('$base/data/iris.csv', 'p0')", 'plain'),
	qr/42501: network access is not allowed for role "plain"/,
	'ml.http_allow set by a plain role before the library loads is not applied');
is(sql("SELECT ml.load('file://$data/iris.csv', 'from_file')"), '150', 'superuser: file:// allowed');

$node->append_conf('postgresql.conf', "ml.http_allow = '$base/data/'");
$node->reload;
usleep(300_000);
is($node->safe_psql('postgres', "SET ROLE plain; SELECT ml.load('$base/data/iris.csv', 'p1')"), '150',
	'plain role: an allowed prefix loads');
like(err("SELECT ml.load('$base/status/404', 'p2')", 'plain'),
	qr/42501: URL "[^"]+\/status\/404" is not allowed by ml.http_allow/, 'plain role: outside the prefix');
like(err("SELECT ml.load('$base/data/../redirect?to=/data/iris.csv', 'p2')", 'plain'),
	qr/42501: URL "[^"]+\/redirect" is not allowed by ml.http_allow/,
	'plain role: dot segments do not escape the prefix');
like(err("SELECT ml.load('$base/data/x/../../status/500', 'p2')", 'plain'),
	qr/42501: URL "[^"]+\/status\/500" is not allowed/, 'plain role: nested dot segments neither');
like(err("SELECT ml.load('http://127.0.0.1:$port.evil/data/iris.csv', 'p2')", 'plain'),
	qr/42501: .* is not allowed by ml.http_allow/, 'plain role: a longer host does not match');
$node->append_conf('postgresql.conf', "ml.http_allow = '$base/data/, $base/redirect'");
$node->reload;
usleep(300_000);
like(err("SELECT ml.load('$base/redirect?to=/status/500', 'p2')", 'plain'),
	qr/42501: URL "[^"]+\/status\/500" is not allowed by ml.http_allow/,
	'plain role: a redirect out of the prefixes is refused');
like(err("SELECT ml.load('$base/redirect?to=file://$data/iris.csv', 'p2')"),
	qr/42501: could not fetch "[^"]+": redirected to a URL that is not http or https/,
	'a redirect to file:// is refused, even for a superuser');

# ---------- S3 ----------

my $s3 = qq{"endpoint": "$base/s3"};
sql(q{SELECT ml.set_credentials('fx', '{"access_key_id": "AKIDFIXTURE", "secret_access_key": "fixture-secret", "region": "eu-west-3"}')});
sql(q{SELECT ml.set_credentials('wrong', '{"access_key_id": "AKIDFIXTURE", "secret_access_key": "not-it"}')});
is(sql(qq{SELECT ml.load('s3://bucket/iris.csv', 's3_iris', options => '{"credentials": "fx", $s3}')}), '150',
	'S3: a signed GET that the fixture verifies with botocore');
is(sql(qq{SELECT ml.load('s3://bucket/iris.csv.gz', 's3_iris', options => '{"credentials": "fx", "region": "us-west-2", $s3}')}),
	'150', 'S3: the region option signs for another region');
like(err(qq{SELECT ml.load('s3://bucket/iris.csv', 'x', options => '{"credentials": "wrong", $s3}')}),
	qr/08000: could not fetch "[^"]+\/s3\/bucket\/iris.csv": HTTP status 403\nDETAIL:  The response began: <Error><Code>SignatureDoesNotMatch/,
	'S3: a wrong secret is refused by the fixture (403)');
like(err(qq{SELECT ml.load('s3://bucket/iris.csv', 'x', options => '{$s3}')}),
	qr/HTTP status 403.*\n.*no AWS4-HMAC-SHA256/, 'S3: an unsigned request is refused');
like(err(qq{SELECT ml.load('s3://Bad_Bucket/iris.csv', 'x', options => '{$s3}')}),
	qr/22023: invalid S3 bucket name "Bad_Bucket"/, 'S3: bucket names are checked');
like(err(qq{SELECT ml.load('s3://bucket', 'x')}), qr/22023: invalid S3 URL "s3:\/\/bucket"/, 'S3: a URL without a key');

is($node->safe_psql('postgres', 'SET ROLE other; SELECT count(*) FROM ml.credentials'), '0',
	'credentials: another role reads none of them');
like(err(qq{SELECT ml.load('s3://bucket/iris.csv', 'x', options => '{"credentials": "fx", $s3}')}, 'other'),
	qr/42704: credentials "fx" do not exist/, 'credentials: another role cannot use them');
like(err(q{INSERT INTO ml.credentials (owner, name, secret) VALUES ('postgres', 'mine', '{}')}, 'other'),
	qr/42501: new row violates row-level security policy/, 'credentials: nobody writes another role\'s');
is($node->safe_psql('postgres', q{SET ROLE other; UPDATE ml.credentials SET secret = '{}'; DELETE FROM ml.credentials; SELECT 1}),
	'1', 'credentials: updates and deletes by another role touch nothing');
is(sql("SELECT count(*) FROM ml.credentials WHERE secret ? 'access_key_id'"), '2', 'credentials: both intact');
like(err(q{SELECT ml.set_credentials('k', '[1]')}), qr/22023: credentials secret must be a JSON object/,
	'credentials: the secret is an object');
is(sql("SELECT ml.drop_credentials('wrong'), ml.drop_credentials('wrong')"), 't|f', 'drop_credentials');

# ---------- models served by a container (SageMaker protocol) ----------

sql(q{CREATE TABLE lin AS SELECT g::float8 AS x, 2 * g::float8 + 1 AS y FROM generate_series(1, 200) g});
is(sql(qq{SELECT algorithm, round((metrics->>'r2')::numeric, 9), round((metrics->>'rmse')::numeric, 9), deployed
            FROM ml.register_endpoint('ep', '$base', '{"source": "lin", "target": "y", "batch_size": 7}')}),
	'endpoint|1.000000000|0.000000000|t',
	'endpoint: evaluated on the hold-out rows (posted 7 at a time) and deployed');
is(sql(q{SELECT string_agg(ml.predict('ep', l)::text, ',' ORDER BY x) FROM lin l WHERE x <= 4}), '3,5,7,9',
	'endpoint: ml.predict calls the container (CSV)');
is(sql(qq{SELECT deployed FROM ml.register_endpoint('ep', '$base',
            '{"source": "lin", "target": "y", "content_type": "application/json", "deploy": "always"}')}),
	't', 'endpoint: a JSON container as a new version');
is(sql(q{SELECT ml.model_info(live_model)->>'content_type' FROM ml.overview WHERE project = 'ep'}), 'application/json',
	'endpoint: the live version speaks JSON');
is(sql(q{SELECT string_agg(ml.predict('ep', l)::text, ',' ORDER BY x) FROM lin l WHERE x <= 4}), '3,5,7,9',
	'endpoint: ml.predict with JSON');
sql(q{SELECT ml.deploy('ep', (SELECT min(m.id) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'ep'))});
is(sql(q{SELECT ml.model_info(live_model)->>'content_type' FROM ml.overview WHERE project = 'ep'}), 'text/csv', 'endpoint: rolled back like any model');
like(err(qq{SELECT * FROM ml.register_endpoint('ep_bad', '$base/bad', '{"source": "lin", "target": "y"}')}),
	qr/08000: endpoint "[^"]+\/bad" returned 99 predictions for 100 rows/, 'endpoint: a wrong number of predictions');
is(sql(q{SELECT count(*) FROM ml.projects WHERE name = 'ep_bad'}), '0', 'endpoint: the failed registration left nothing');
like(err(qq{SELECT * FROM ml.register_endpoint('ep_down', '$base/nothing', '{"source": "lin", "target": "y"}')}),
	qr/08000: endpoint "[^"]+\/nothing" is not ready: GET \/ping answered HTTP status 404/, 'endpoint: not ready');
like(err(qq{SELECT * FROM ml.register_endpoint('ep_x', '$base', '{"target": "y"}')}),
	qr/22023: ml.register_endpoint needs the option "source"/, 'endpoint: a source is needed');
like(err(qq{SELECT * FROM ml.register_endpoint('ep_x', '$base', '{"source": "lin", "colour": 1}')}),
	qr/22023: unknown option "colour"/, 'endpoint: unknown option');
like(err(q{SELECT * FROM ml.register_endpoint('ep_x', 'ftp://x', '{"source": "lin", "target": "y"}')}),
	qr/22023: endpoint URL must be an http:\/\/ or https:\/\/ URL/, 'endpoint: http(s) only');
# a binary classifier in a container: its answers are the second label's probability
sql(q{CREATE TABLE over100 AS SELECT g::float8 AS x, g > 100 AS over FROM generate_series(1, 200) g});
is(sql(qq{SELECT metrics->>'accuracy', deployed FROM ml.register_endpoint('ep_cls', '$base/proba',
            '{"source": "over100", "target": "over"}')}), '1|t', 'endpoint: a classifier, evaluated');
is(sql(q{SELECT string_agg(format('%s:%s:%s', ml.predict_label('ep_cls', b), ml.predict('ep_cls', b),
                                  ml.predict_proba('ep_cls', b)), ' ' ORDER BY x)
           FROM over100 b WHERE x IN (3, 150)}),
	'false:0:{0.75,0.25} true:1:{0.25,0.75}', 'endpoint: labels and probabilities from the container');

# ml._predict_batch (the batch jobs' path) agrees with the per-row functions
sql(q{SELECT * FROM ml.train('iris_cls', 'iris', 'species', 'logistic')});
is(sql(q{SELECT count(*), count(*) FILTER (WHERE b.label = ml.predict_label('iris_cls', r.i)
                                          AND b.probabilities = ml.predict_proba('iris_cls', r.i)
                                          AND b.prediction = ml.predict('iris_cls', r.i))
           FROM (SELECT array_agg(i ORDER BY sepal_length, sepal_width, petal_length, petal_width) AS a FROM iris i) x,
                ml._predict_batch((SELECT live_model FROM ml.overview WHERE project = 'iris_cls'), x.a, 16) b,
                LATERAL (SELECT x.a[b.ord] AS i) r}),
	'150|150', '_predict_batch: labels, probabilities and values as ml.predict_* give them');
like(err(q{SELECT * FROM ml._predict_batch(1, ARRAY[1, 2])}), qr/42804: rows must be an array of rows, not integer/,
	'_predict_batch: rows only');
is(sql(q{SELECT count(*) FROM ml._predict_batch(1, NULL::iris[])}), '0', '_predict_batch: NULL rows, no rows');

sql(q{GRANT SELECT ON lin TO plain});
like(err(q{SELECT ml.predict('ep', l) FROM lin l LIMIT 1}, 'plain'),
	qr/42501: URL "[^"]+\/invocations" is not allowed by ml.http_allow/,
	'endpoint: a role outside ml.http_allow cannot reach the container through ml.predict');

$node->stop;
done_testing();
