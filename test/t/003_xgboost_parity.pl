# test/t/003_xgboost_parity.pl
#
# pgmaker's xgboost against Python's xgboost (Debian's python3-xgboost; the
# test is skipped without it):
#   1. parity: on diabetes (regression) and breast_cancer (binary), with
#      test_size 0 and the same parameters, pgmaker's predictions on every
#      row equal those of a booster trained in Python on the same rows in
#      the same order, within 1e-5;
#   2. export: the JSON model from ml.export_model loads in Python and
#      predicts the same as pgmaker within 1e-5;
#   3. import: the booster trained in Python, saved as UBJSON, imported
#      with ml.import_model, predicts in pgmaker what it predicts in Python.
# The Python side is t/xgboost_parity.py; files pass between the two.

use strict;
use warnings;

use Cwd qw(abs_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
if (!-x $python || system($python, '-c', 'import xgboost') != 0)
{
	plan skip_all => "$python cannot import xgboost (install python3-xgboost)";
}

my $testdir = abs_path($ENV{TESTDIR} // '.');
my $datadir = "$testdir/data";
my $script = "$testdir/t/xgboost_parity.py";
die "data directory $datadir has no diabetes.csv" unless -f "$datadir/diabetes.csv";
die "missing $script" unless -f $script;

my $tolerance = 1e-5;
my $hyperparams = '{"n_estimators": 50, "max_depth": 4, "eta": 0.3, "seed": 1}';

my $node = PostgreSQL::Test::Cluster->new('parity');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgmaker'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgmaker');

my $workdir = PostgreSQL::Test::Utils::tempdir;

# Writes text to a file.
sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh $text;
	close($fh);
}

# Reads a file of numbers, one a line.
sub read_numbers
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "could not read $path: $!";
	chomp(my @lines = <$fh>);
	close($fh);
	return @lines;
}

# The largest absolute difference between two lists of numbers.
sub max_diff
{
	my ($a, $b) = @_;
	die "lists differ in length: " . scalar(@$a) . " and " . scalar(@$b) if @$a != @$b;
	my $max = 0;
	for my $i (0 .. $#$a)
	{
		my $d = abs($a->[$i] - $b->[$i]);
		$max = $d if $d > $max;
	}
	return $max;
}

# name: table and CSV; positive: the label Python calls 1 (the second of
# the sorted labels), '-' for regression.
my @cases = (
	{ name => 'diabetes', target => 'progression', positive => '-' },
	{
		name => 'breast_cancer',
		target => 'diagnosis',
		positive => 'malignant',
		labels => '["benign", "malignant"]'
	},);

for my $case (@cases)
{
	my ($name, $target, $positive) = @$case{qw(name target positive)};
	my $csv = "$datadir/$name.csv";
	my $dir = "$workdir/$name";
	mkdir $dir or die "could not create $dir: $!";

	# the table has the CSV's columns in the CSV's order
	open(my $fh, '<', $csv) or die "could not read $csv: $!";
	my $header = <$fh>;
	close($fh);
	chomp $header;
	my @columns = split /,/, $header;
	my @features = grep { $_ ne $target } @columns;
	my $coldefs = join(', ',
		map { $_ eq $target && $positive ne '-' ? "$_ text" : "$_ float8" } @columns);
	$node->safe_psql('postgres',
		"CREATE TABLE $name ($coldefs); COPY $name FROM '$csv' WITH (FORMAT csv, HEADER true)");

	# 1. train in pgmaker on every row, one thread
	my $model = $node->safe_psql(
		'postgres', qq{
		SET client_min_messages = warning;
		SET ml.threads = 1;
		SELECT model_id FROM ml.train('$name', '$name', '$target', 'xgboost',
			hyperparams => '$hyperparams', test_size => 0);
	});
	like($model, qr/^\d+$/, "$name: model trained");
	# every row's prediction in table order, which is the CSV's order
	my $predict = sub {
		my ($id) = @_;
		my $value =
		  $positive eq '-'
		  ? "ml.predict(${id}::bigint, t)"
		  : "(ml.predict_proba(${id}::bigint, t))[array_position(ml.labels(${id}::bigint), '$positive')]";
		return $node->safe_psql('postgres', "SELECT $value FROM $name t ORDER BY ctid");
	};
	my $predictions = $predict->($model);
	write_file("$dir/pgmaker.txt", "$predictions\n");

	# 2. the export, as XGBoost's JSON model
	my $json = $node->safe_psql('postgres',
		"SELECT convert_from(ml.export_model($model), 'UTF8')");
	like($json, qr/^\{"learner":/, "$name: the export is XGBoost's JSON model");
	write_file("$dir/model.json", $json);

	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run [ $python, $script, $csv, $target, $positive,
		"$dir/pgmaker.txt", "$dir/model.json", $dir ], '>', \$out, '2>', \$err;
	ok($ok, "$name: the Python side ran") or diag($err);
	my ($train_diff) = $out =~ /^train_max_diff (\S+)$/m;
	my ($export_diff) = $out =~ /^export_max_diff (\S+)$/m;
	ok(defined $train_diff && $train_diff <= $tolerance,
		"$name: pgmaker predicts what Python's xgboost trained on the same rows predicts")
	  or diag("output: $out\nerrors: $err");
	ok(defined $export_diff && $export_diff <= $tolerance,
		"$name: the exported model predicts in Python what pgmaker predicts")
	  or diag("output: $out\nerrors: $err");
	diag("$name: max |Python - pgmaker| = $train_diff (training), $export_diff (export)")
	  if defined $train_diff && defined $export_diff;

	# 3. the Python booster, imported as UBJSON
	my $spec =
	  $positive eq '-'
	  ? '[' . join(', ', map { "\"$_\"" } @features) . ']'
	  : '{"features": [' . join(', ', map { "\"$_\"" } @features) . '], "labels": '
	  . $case->{labels} . '}';
	my $imported = $node->safe_psql(
		'postgres', qq{
		SET client_min_messages = warning;
		SELECT ml.import_model('${name}_python', 'xgboost_ubj',
			pg_read_binary_file('$dir/python.ubj'), '$spec');
	});
	like($imported, qr/^\d+$/, "$name: the Python booster imported");
	my @from_import = split /\n/, $predict->($imported);
	my @from_python = read_numbers("$dir/python_predictions.txt");
	my $import_diff = max_diff(\@from_import, \@from_python);
	cmp_ok($import_diff, '<=', $tolerance,
		"$name: the imported Python booster predicts in pgmaker what it predicts in Python");
	diag("$name: max |Python - imported| = $import_diff");
}

$node->stop;

done_testing();
