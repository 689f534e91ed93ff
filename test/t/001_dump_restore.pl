# test/t/001_dump_restore.pl
#
# Models survive pg_dump and pg_restore: the catalog tables (projects,
# models, deployments) and their sequences are registered with
# pg_extension_config_dump, so a custom-format dump of one server restored
# into a fresh database on another gives the same projects, models and
# deployment history, bit-identical predictions, the same class labels,
# and sequences that continue after the restored ids.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Cwd qw(abs_path);

# Server-side COPY needs an absolute path.
my $datadir = abs_path(($ENV{TESTDIR} // '.') . '/data');
die "data directory $datadir has no diabetes.csv" unless -f "$datadir/diabetes.csv";

my $diabetes_csv = "$datadir/diabetes.csv";
my $iris_csv = "$datadir/iris.csv";

# Same column order everywhere: predictions are compared row by row.
my $diabetes_cols = 'age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, progression';
my $iris_cols = 'sepal_length, sepal_width, petal_length, petal_width, species';

# The queries whose results must be the same before and after the restore.
my %queries = (
	projects_count => 'SELECT count(*) FROM ml.projects',
	models_count => 'SELECT count(*) FROM ml.models',
	deployments_count => 'SELECT count(*) FROM ml.deployments',
	projects => q{SELECT string_agg(format('%s|%s|%s|%s|%s', id, name, task, target, owner), E'\n' ORDER BY id)
		FROM ml.projects},
	models => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', m.id, p.name, m.algorithm,
			m.hyperparams, m.metrics, m.n_train, m.n_test, md5(m.model)), E'\n' ORDER BY m.id)
		FROM ml.models m JOIN ml.projects p ON p.id = m.project_id},
	history => q{SELECT string_agg(format('%s|%s|%s|%s|%s', d.id, p.name, d.model_id, d.strategy,
			d.deployed_by), E'\n' ORDER BY d.id)
		FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id},
	overview => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', project, task, target,
			live_model, algorithm, key_metric, score, models, deployed_at), E'\n' ORDER BY project)
		FROM ml.overview},
	diabetes_predictions => qq{SELECT string_agg(ml.predict('diabetes', d)::text, ','
			ORDER BY $diabetes_cols) FROM diabetes d},
	iris_labels_predicted => qq{SELECT string_agg(ml.predict_label('iris', i), ','
			ORDER BY $iris_cols) FROM iris i},
	iris_classes => q{SELECT ml.labels('iris')},
	runs => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s', id, project_id, kind, model_id,
			trials_run, report ->> 'why'), E'\n' ORDER BY id) FROM ml.runs},
	trials => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s', id, run_id, model_id, trial,
			fold_scores, best), E'\n' ORDER BY id) FROM ml.trials},
	model_runs => q{SELECT string_agg(id || '|' || coalesce(run_id::text, '-'), ',' ORDER BY id)
		FROM ml.models},
	bandit_arms => q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s', b.name, b.algorithm, b.options, a.arm, a.state,
			a.pulls), E'\n' ORDER BY b.name, a.arm_index)
		FROM ml.bandits b JOIN ml.bandit_arms a ON a.bandit_id = b.id},
	bandit_decisions => q{SELECT string_agg(format('%s|%s|%s|%s|%s', id, arm_index, context, score, reward), E'\n'
		ORDER BY id) FROM ml.bandit_decisions},
	labeled => q{SELECT string_agg(format('%s|%s|%s|%s', key, label, confidence, n_answers), E'\n' ORDER BY key)
		FROM ml.labeled('iris_labels')},
	label_tasks => q{SELECT string_agg(format('%s|%s|%s|%s', id, key, labeler, label), E'\n' ORDER BY id)
		FROM ml.label_tasks},
	diabetes_rows => 'SELECT count(*) FROM diabetes',
	iris_rows => 'SELECT count(*) FROM iris',);

# Runs every query of %queries on a node's database; returns a hash.
sub snapshot
{
	my ($node, $db) = @_;
	my %result;
	foreach my $name (sort keys %queries)
	{
		$result{$name} = $node->safe_psql($db, $queries{$name});
	}
	return \%result;
}

# ---------------------------------------------------------------- source

my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
$src->start;

$src->safe_psql('postgres', 'CREATE DATABASE mlsrc');
$src->safe_psql(
	'mlsrc', qq{
	CREATE EXTENSION pgmaker;
	CREATE TABLE diabetes (
		age float8, sex float8, bmi float8, bp float8, s1 float8, s2 float8,
		s3 float8, s4 float8, s5 float8, s6 float8, progression float8);
	COPY diabetes FROM '$diabetes_csv' WITH (FORMAT csv, HEADER true);
	CREATE TABLE iris (
		sepal_length float8, sepal_width float8, petal_length float8,
		petal_width float8, species text);
	COPY iris FROM '$iris_csv' WITH (FORMAT csv, HEADER true);
});

is($src->safe_psql('mlsrc', 'SELECT count(*) FROM diabetes'), '442', 'diabetes loaded');
is($src->safe_psql('mlsrc', 'SELECT count(*) FROM iris'), '150', 'iris loaded');

my $linear_id = $src->safe_psql('mlsrc',
	q{SELECT model_id FROM ml.train('diabetes', 'diabetes', 'progression')});
like($linear_id, qr/^\d+$/, 'regression model trained');

my $iris_id = $src->safe_psql('mlsrc',
	q{SELECT model_id FROM ml.train('iris', 'iris', 'species')});
like($iris_id, qr/^\d+$/, 'classification model trained');

my $ridge_id = $src->safe_psql('mlsrc',
	q{SELECT model_id FROM ml.train('diabetes', 'diabetes', 'progression',
		algorithm => 'ridge', hyperparams => '{"alpha": 10}', deploy => 'never')});
like($ridge_id, qr/^\d+$/, 'second regression model trained');
isnt($ridge_id, $linear_id, 'second model has its own id');

is( $src->safe_psql(
		'mlsrc',
		qq{SELECT model_id || '|' || deployed FROM ml.deploy('diabetes', ${ridge_id}::bigint)}),
	"$ridge_id|true",
	'second model deployed by id');

# a grid search: a run, its trials and a model that names the run
my $search_id = $src->safe_psql('mlsrc',
	q{SELECT model_id FROM ml.train('diabetes', 'diabetes', 'progression', algorithm => 'ridge',
		search => 'grid', search_params => '{"alpha": [0.1, 10]}', search_args => '{"cv": 3}',
		deploy => 'never')});
like($search_id, qr/^\d+$/, 'searched model trained');

# a monitored project: its baseline travels with its model
is($src->safe_psql('mlsrc', q{SELECT count(*) FILTER (WHERE violated) FROM ml.monitor('diabetes', 'diabetes')}),
	'0', 'source: the live diabetes model is monitored, no violation on its own data');

# a bandit with what it learned, and a labeling job with its answers
$src->safe_psql(
	'mlsrc', q{
	SELECT ml.create_bandit('offers', ARRAY['a', 'b', 'c'], 'linucb', '{"dim": 2, "seed": 5}');
	DO $$
	DECLARE
		d bigint;
	BEGIN
		FOR i IN 1..20 LOOP
			SELECT decision_id INTO d FROM ml.choose('offers', ARRAY[i / 20.0, 1 - i / 20.0]::float8[]);
			PERFORM ml.reward('offers', d, i % 3);
		END LOOP;
	END
	$$;
	SELECT ml.create_labeling_job('iris_labels', 'SELECT row_number() OVER () AS id, * FROM iris', 'id',
		'{"labels": ["setosa", "versicolor", "virginica"], "batch_size": 4, "labelers_per_item": 2}');
	DO $$
	DECLARE
		t record;
	BEGIN
		FOR i IN 1..4 LOOP
			SELECT * INTO t FROM ml.next_label_task('iris_labels', 'ann');
			PERFORM ml.submit_label(t.task_id, 'ann', t.item->>'species');
			SELECT * INTO t FROM ml.next_label_task('iris_labels', 'bob');
			PERFORM ml.submit_label(t.task_id, 'bob', 'setosa');
		END LOOP;
	END
	$$;
});

my $before = snapshot($src, 'mlsrc');
is(scalar(split /\n/, $before->{bandit_decisions}), 20, 'source: twenty bandit decisions');
is(scalar(split /\n/, $before->{labeled}), 4, 'source: four labeled items');

# Sanity of what is compared later, so that an empty or broken state on
# both sides cannot pass as "equal".
is($before->{projects_count}, '2', 'source: two projects');
is($before->{models_count}, '4', 'source: four models');
is($before->{model_runs} =~ tr/|//, 4, 'source: every model listed with its run');
like($before->{model_runs}, qr/\Q$search_id\E\|\d+/, 'source: the searched model names its run');
is(scalar(split /\n/, $before->{trials}), 2, 'source: two trials');
cmp_ok($before->{deployments_count}, '>=', 3, 'source: three or more deployments');
my @diabetes_history = split /\n/,
  $src->safe_psql('mlsrc',
	q{SELECT d.model_id || '|' || d.strategy FROM ml.deployments d
	  JOIN ml.projects p ON p.id = d.project_id
	  WHERE p.name = 'diabetes' ORDER BY d.id});
cmp_ok(scalar(@diabetes_history), '>=', 2, 'source: diabetes history has two or more rows');
is($diabetes_history[-1], "$ridge_id|manual", 'source: newest diabetes deployment is the ridge model, by id');
like($diabetes_history[0], qr/^$linear_id\|/,
	'source: first diabetes deployment is the first model');
my @preds = split /,/, $before->{diabetes_predictions};
is(scalar(@preds), 442, 'source: one prediction per diabetes row');
is( scalar(grep { /^-?\d+(\.\d+)?(e[-+]\d+)?$/ } @preds),
	442, 'source: every diabetes prediction is a number');
is( $src->safe_psql(
		'mlsrc',
		qq{SELECT bool_and(ml.predict('diabetes', d) = ml.predict(${ridge_id}::bigint, d))
		   FROM diabetes d}),
	't',
	'source: project predictions come from the deployed ridge model');
my @labels = split /,/, $before->{iris_labels_predicted};
is(scalar(@labels), 150, 'source: one label per iris row');
is($before->{iris_classes}, '{setosa,versicolor,virginica}', 'source: iris labels');
is( scalar(grep { /^(setosa|versicolor|virginica)$/ } @labels),
	150, 'source: every predicted iris label is a known class');

# a grant of the diabetes project to a role (roles are the cluster's: the
# restore needs the role, as pg_dumpall --globals-only would make it)
$src->safe_psql('mlsrc', q{CREATE ROLE dash; SELECT ml.grant('diabetes', 'dash', 'predict');});

# ---------------------------------------------------------------- dump

my $dumpfile = "$PostgreSQL::Test::Utils::tmp_check/mlsrc.dump";
$src->command_ok(
	[ 'pg_dump', '--format=custom', '--file', $dumpfile, '--dbname', $src->connstr('mlsrc') ],
	'pg_dump of the source database');
ok(-s $dumpfile, 'dump file written');

# ---------------------------------------------------------------- restore

my $dst = PostgreSQL::Test::Cluster->new('restored');
$dst->init;
$dst->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
$dst->start;
$dst->safe_psql('postgres', 'CREATE DATABASE mldst');
$dst->safe_psql('postgres', 'CREATE ROLE dash');

$dst->command_ok(
	[ 'pg_restore', '--exit-on-error', '--dbname', $dst->connstr('mldst'), $dumpfile ],
	'pg_restore into a fresh database');

is($dst->safe_psql('mldst', q{SELECT extversion FROM pg_extension WHERE extname = 'pgmaker'}),
	$src->safe_psql('mlsrc', q{SELECT extversion FROM pg_extension WHERE extname = 'pgmaker'}),
	'extension restored at the same version');

my $after = snapshot($dst, 'mldst');

foreach my $name (sort keys %queries)
{
	is($after->{$name}, $before->{$name}, "restored: $name identical");
}

# Row-by-row comparison too, so a failure names the first differing row.
my @after_preds = split /,/, $after->{diabetes_predictions};
my $first_diff = -1;
for my $i (0 .. $#preds)
{
	if (!defined $after_preds[$i] || $after_preds[$i] ne $preds[$i])
	{
		$first_diff = $i;
		last;
	}
}
is($first_diff, -1, 'restored: every diabetes prediction is bit-identical (float8 text)');

# the restored baseline monitors as the source's did
is($dst->safe_psql('mldst', q{SELECT count(*) FILTER (WHERE violated) FROM ml.monitor('diabetes', 'diabetes')}),
	'0', 'restored: the diabetes model is monitored against its restored baseline');
is($dst->safe_psql('mldst', q{SELECT count(*) FILTER (WHERE violated) > 0 FROM ml.monitor('diabetes',
		'SELECT age, sex, bmi * 3 AS bmi, bp, s1, s2, s3, s4, s5, s6, progression FROM diabetes')}),
	't', 'restored: and the monitor still sees drift');

# the restored bandit goes on: new decisions get new ids and rewards count
is( $dst->safe_psql(
		'mldst', q{
	SELECT d.decision_id > 20 FROM ml.choose('offers', ARRAY[0.5, 0.5]::float8[]) d;
	SELECT ml.reward('offers', (SELECT max(id) FROM ml.bandit_decisions), 1);
	SELECT sum(pulls) FROM ml.bandit_arms}),
	"t\n\n21", 'restored: the bandit chooses and learns on');
# and the labeling job hands out the next item
like($dst->safe_psql('mldst', q{SELECT key FROM ml.next_label_task('iris_labels', 'carl')}),
	qr/^\d+$/, 'restored: the labeling job hands out tasks');

# the grant is restored: its role sees and predicts with the project only
$dst->safe_psql('mldst', 'GRANT ml_user TO dash; GRANT SELECT ON diabetes TO dash');
is( $dst->safe_psql(
		'mldst', q{SET ROLE dash;
		SELECT string_agg(name, ',' ORDER BY name) FROM ml.projects;
		SELECT ml.predict('diabetes', d) = ml.predict('diabetes', d) FROM diabetes d LIMIT 1}),
	"diabetes\nt",
	'restored: the grant lets its role see and predict with the project, and no other');

is( $dst->safe_psql(
		'mldst',
		qq{SELECT bool_and(ml.predict('diabetes', d) = ml.predict(${ridge_id}::bigint, d))
		   FROM diabetes d}),
	't',
	'restored: the live diabetes model is still the ridge model');

# Sequences were restored: new rows get ids after the restored ones.
my $max_model = $dst->safe_psql('mldst', 'SELECT max(id) FROM ml.models');
my $max_deployment = $dst->safe_psql('mldst', 'SELECT max(id) FROM ml.deployments');
my $max_project = $dst->safe_psql('mldst', 'SELECT max(id) FROM ml.projects');

my $new_id = $dst->safe_psql('mldst',
	q{SELECT model_id FROM ml.train('diabetes', 'diabetes', 'progression',
		algorithm => 'linear', deploy => 'never')});
like($new_id, qr/^\d+$/, 'restored: training a new model works');
cmp_ok($new_id, '>', $max_model, 'restored: new model id is larger than every restored model id');

is( $dst->safe_psql('mldst',
		qq{SELECT model_id || '|' || deployed FROM ml.deploy('diabetes', ${new_id}::bigint)}),
	"$new_id|true",
	'restored: new model deployed by id');
cmp_ok($dst->safe_psql('mldst', 'SELECT max(id) FROM ml.deployments'),
	'>', $max_deployment, 'restored: new deployment id is larger than every restored one');
is( $dst->safe_psql('mldst',
		q{SELECT live_model FROM ml.overview WHERE project = 'diabetes'}),
	$new_id,
	'restored: overview shows the new live model');

is($dst->safe_psql('mldst', q{SELECT project FROM ml.train('iris2', 'iris', 'species')}),
	'iris2', 'restored: a new project can be trained');
my $new_project = $dst->safe_psql('mldst', q{SELECT id FROM ml.projects WHERE name = 'iris2'});
cmp_ok($new_project, '>', $max_project, 'restored: new project id is larger than every restored one');

# The source is unchanged by all this.
is($src->safe_psql('mlsrc', 'SELECT count(*) FROM ml.models'), '4', 'source still has four models');

$dst->stop;
$src->stop;

done_testing();
