#!/usr/bin/perl
# failing_mx.pl - an MX that fails in the middle of a session, for the
# relay's tests of what the VM is told when the MX goes away: it greets,
# answers EHLO, MAIL and RCPT, and then, for each of COUNT connections:
#   reset-in-data   answers DATA 354, reads some of the body, then resets
#                   the connection (SO_LINGER 0)
#   close-in-data   the same, but closes it (a FIN) without a word
#   close-at-mail   closes it (a FIN) instead of answering MAIL FROM
#   slow-dot        takes the whole message, and answers its final dot
#                   "250 2.0.0 queued as SLOW" only after DELAY seconds (an
#                   MX whose content filter is slow), then serves QUIT
# Prints "failed N" (or "served N") to stdout after each connection.
#   failing_mx.pl MODE ADDR PORT [COUNT [DELAY]]
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);

my ($mode, $addr, $port, $count, $delay) = @ARGV;
die "usage: $0 reset-in-data|close-in-data|close-at-mail|slow-dot ADDR PORT [COUNT [DELAY]]\n"
	unless defined $port && $mode =~ /^(reset-in-data|close-in-data|close-at-mail|slow-dot)$/;
$count //= 1;
$delay //= 0;
$| = 1;

my $listener = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 16,
				     ReuseAddr => 1, Proto => 'tcp')
	or die "$0: cannot listen on $addr:$port: $!\n";

sub fail_now {
	my ($sock) = @_;
	setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $mode eq 'reset-in-data';
	close($sock);
}

for my $n (1 .. $count) {
	my $sock = $listener->accept or die "$0: accept: $!\n";
	print $sock "220 failing.example ESMTP\r\n";
	my $in_data = 0;
	while (defined(my $line = <$sock>)) {
		if ($in_data && $mode eq 'slow-dot') {
			next unless $line eq ".\r\n";
			sleep($delay);
			print $sock "250 2.0.0 queued as SLOW\r\n";
			$in_data = 0;
			next;
		}
		if ($in_data) {
			# some of the body has come: now fail
			fail_now($sock);
			last;
		}
		if ($line =~ /^EHLO/i) {
			print $sock "250-failing.example\r\n250 PIPELINING\r\n";
		} elsif ($line =~ /^MAIL/i) {
			if ($mode eq 'close-at-mail') {
				close($sock);
				last;
			}
			print $sock "250 2.1.0 Ok\r\n";
		} elsif ($line =~ /^RCPT/i) {
			print $sock "250 2.1.5 Ok\r\n";
		} elsif ($line =~ /^DATA/i) {
			print $sock "354 go ahead\r\n";
			$in_data = 1;
		} elsif ($line =~ /^QUIT/i) {
			print $sock "221 Bye\r\n";
			close($sock);
			last;
		} else {
			print $sock "250 Ok\r\n";
		}
	}
	print $mode eq 'slow-dot' ? "served $n\n" : "failed $n\n";
}
