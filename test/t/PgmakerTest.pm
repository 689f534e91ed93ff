# test/t/PgmakerTest.pm: helpers shared by pgmaker's Perl TAP tests.
#
#   my $base = PgmakerTest::start_fixture($data_dir);   # http://127.0.0.1:PORT
#   PgmakerTest::error_of($node, $sql, $role)           # "SQLSTATE: message..." or "no error"
#   PgmakerTest::wait_for($node, $query, $want)         # polls up to 60 s
#
# The fixture server (test/fixtures/http_fixture.py) runs until the test
# process ends, however it ends.

package PgmakerTest;

use strict;
use warnings;

use Time::HiRes qw(usleep);

my @fixtures;

END { kill 'TERM', @fixtures if @fixtures; }

# Starts the loopback fixture server on data_dir; returns its base URL.
sub start_fixture
{
	my ($data_dir) = @_;
	my $port_file = "$data_dir/.fixture-port";
	my $pid = fork();

	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec('python3', 'fixtures/http_fixture.py', '--data-dir', $data_dir,
			'--port-file', $port_file)
		  or die "exec: $!";
	}
	push @fixtures, $pid;
	for (my $i = 0; $i < 100 && !-e $port_file; $i++) { usleep(100_000); }
	open my $pf, '<', $port_file or die "the fixture server did not start";
	my $port = <$pf>;
	close $pf;
	return "http://127.0.0.1:$port";
}

# Runs sql (as role, when given) on database postgres expecting an error;
# returns psql's verbose error text, or "no error".
sub error_of
{
	my ($node, $sql, $role) = @_;
	my ($ret, $out, $stderr) = $node->psql('postgres',
		($role ? "SET ROLE $role; " : '') . $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return $ret == 0 ? "no error" : $stderr;
}

# Polls query until it returns want (at most 60 s); returns what it saw.
sub wait_for
{
	my ($node, $query, $want) = @_;
	my $got = '';

	for (my $i = 0; $i < 600; $i++)
	{
		$got = $node->safe_psql('postgres', $query);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

1;
