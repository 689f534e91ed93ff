# test/t/010_report.pl
#
# ml.report as a person sees it: the page of a classification and of a
# regression project, opened in headless Chromium (no network); the DOM it
# builds must hold every section with non-empty SVG plots, and the
# screenshot must be an image of the page.

use strict;
use warnings;

use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $chromium = (grep { -x $_ } ('/usr/bin/chromium', '/usr/bin/chromium-browser'))[0];
die "chromium is not installed (scripts/deps.sh installs it)" unless $chromium;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $node = PostgreSQL::Test::Cluster->new('report');
$node->init;
$node->start;
$node->safe_psql('postgres', q{CREATE EXTENSION pgmaker});
# data/load.sql's \copy paths read test/data/...: run it from a directory
# whose test/ is this copy of test/
{
	my $root = "$tmp/root";
	mkdir $root or die "mkdir $root: $!";
	symlink(Cwd::getcwd(), "$root/test") or die "symlink: $!";
	my ($out, $err);
	IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-f', "$root/test/data/load.sql" ], '>', \$out, '2>', \$err,
		init => sub { chdir $root or die "chdir $root: $!" })
	  or die "loading the data sets failed: $err";
}
$node->safe_psql('postgres', q{
	SELECT model_id FROM ml.train('cancer', 'breast_cancer', 'diagnosis', 'xgboost',
	    hyperparams => '{"n_estimators": 40, "max_depth": 3, "early_stopping_rounds": 10}');
	SELECT model_id FROM ml.train('diabetes', 'diabetes', 'progression', 'linear');
	SELECT count(*) FROM ml.monitor('diabetes', 'SELECT age + 10 AS age, sex, bmi, bp, s1, s2, s3, s4, s5, s6 FROM diabetes');
});

# Runs headless Chromium on a page; returns its stdout.
sub chromium
{
	my @args = @_;
	my ($out, $err);
	IPC::Run::run([ $chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
			'--disable-dev-shm-usage', '--proxy-server=127.0.0.1:9', "--user-data-dir=$tmp/profile", @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return $out;
}

my %sections = (
	cancer => [qw(overview leaderboard metrics evaluation features learning deployments)],
	diabetes => [qw(overview leaderboard metrics evaluation features drift deployments)],
);
for my $project (sort keys %sections)
{
	my $html = $node->safe_psql('postgres', "SELECT ml.report('$project')");
	my $file = "$tmp/$project.html";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $html;
	close $fh;

	# the DOM after Chromium parsed and laid out the page
	my $dom = chromium('--dump-dom', "file://$file");
	like($dom, qr{<h1>$project</h1>}, "$project: Chromium shows the page");
	for my $id (@{ $sections{$project} })
	{
		my ($section) = $dom =~ m{(<section id="$id">.*?</section>)}s;
		ok(defined $section, "$project: section $id is in the DOM");
		next unless defined $section && $id =~ /^(evaluation|features|learning|drift|deployments)$/;
		my @svgs = $section =~ m{(<svg .*?</svg>)}sg;
		ok(@svgs > 0, "$project: section $id has a plot");
		is(scalar(grep { !/<(polyline|circle|rect|line)[^>]*(points="[^"]+"|cx=|width=|x1=)/ } @svgs), 0,
			"$project: every plot of $id draws marks");
	}
	my $marks = () = $dom =~ /<(?:polyline|circle|rect) class="/g;
	cmp_ok($marks, '>', 20, "$project: $marks marks in the plots");
	unlike($dom, qr/<script/i, "$project: no script");

	# and an image of it
	my $png = "$tmp/$project.png";
	chromium("--screenshot=$png", '--window-size=1100,2600', "file://$file");
	ok(-s $png && -s $png > 20_000, "$project: a screenshot of the page (" . (-s $png // 0) . " bytes)");
	open my $ph, '<:raw', $png or die;
	read $ph, my $magic, 8;
	close $ph;
	is($magic, "\x89PNG\r\n\x1a\n", "$project: the screenshot is a PNG");
}

$node->stop;
done_testing();
