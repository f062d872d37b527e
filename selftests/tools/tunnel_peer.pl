#!/usr/bin/perl
# tunnel_peer.pl - both ends of a STARTTLS tunnel for the passthrough tests:
# after the SMTP dialogue up to STARTTLS's 220, the two ends exchange opaque
# bytes the way a half-closing peer would, and print what they received, so
# a test can compare byte counts and digests end to end.
#
#   tunnel_peer.pl server ADDR PORT REPLY_BYTES
#       one connection: greeting, EHLO (offers STARTTLS), STARTTLS -> 220;
#       then reads until EOF (the client's half-close), only then sends
#       REPLY_BYTES pseudo-random bytes and closes. Prints
#       "server got BYTES MD5" after the client's EOF.
#   tunnel_peer.pl client ADDR PORT SEND_BYTES
#       EHLO, STARTTLS; sends SEND_BYTES pseudo-random bytes, half-closes
#       (shutdown SHUT_WR), reads until EOF. Prints "client sent BYTES MD5"
#       and "client got BYTES MD5". IPv4. With TUNNEL_PEER_SLOW=1 it reads
#       slowly through a small receive buffer.
#   tunnel_peer.pl handshake ADDR PORT garbage|silent
#       EHLO, STARTTLS, then a line of garbage where a TLS ClientHello
#       belongs, or nothing at all; prints "closed after MS ms" once the
#       other end closes (or "not closed" after 30 s).
#   tunnel_peer.pl abrupt-mx ADDR PORT CERT KEY
#       an MX that offers STARTTLS, takes one message over TLS, answers its
#       dot "250 2.0.0 queued as ABRUPT" and closes at once without a TLS
#       close_notify, as some MTAs do: the 250 must still reach the VM.
#   tunnel_peer.pl fin-then-reset ADDR PORT
#       after STARTTLS's 220: a FIN at once, then a reset (SO_LINGER 0)
#       once a byte comes in from the other side.
#   tunnel_peer.pl poke ADDR PORT SECONDS
#       EHLO, STARTTLS, reads until EOF, sends one byte, then waits silently;
#       prints "closed after MS ms" once the other end closes or resets
#       (or "not closed" after SECONDS).
# The pseudo-random stream is the same for a given size (seeded), so a
# digest computed on one side can be checked against the other's.
use strict;
use warnings;
use IO::Socket::INET;
use Digest::MD5;
use Socket qw(SHUT_WR IPPROTO_TCP SOL_SOCKET SO_LINGER SO_RCVBUF);
use Socket qw(TCP_CORK TCP_INFO);
use Time::HiRes qw(time);

my ($mode, $addr, $port, $arg, $key) = @ARGV;
die "usage: $0 server|client|handshake|abrupt-mx|fin-then-reset|poke ADDR PORT [ARG]\n"
	unless defined $port;
die "$0 $mode: one more argument (see the top of this file)\n"
	if !defined $arg && $mode ne 'fin-then-reset';

sub stream_chunk {
	my ($seed, $len) = @_;
	my $out = '';
	my $x = $seed;
	while (length($out) < $len) {
		$x = ($x * 1103515245 + 12345) & 0x7fffffff;
		$out .= pack('N', $x);
	}
	return substr($out, 0, $len);
}

sub send_stream {
	my ($sock, $total, $md5) = @_;
	my ($sent, $seed) = (0, 7);
	while ($sent < $total) {
		my $n = $total - $sent > 65536 ? 65536 : $total - $sent;
		my $buf = stream_chunk($seed++, $n);
		$md5->add($buf);
		my $off = 0;
		while ($off < $n) {
			my $w = syswrite($sock, $buf, $n - $off, $off);
			die "write: $!\n" unless defined $w;
			$off += $w;
		}
		$sent += $n;
	}
	return $sent;
}

# TUNNEL_PEER_SLOW=1: a slow reader (small receive buffer, a pause per
# read), so that the proxy holds bytes for it while the other side ends
my $slow = $ENV{TUNNEL_PEER_SLOW};

sub read_all {
	my ($sock) = @_;
	my ($got, $md5, $buf) = (0, Digest::MD5->new, '');
	while (1) {
		select(undef, undef, undef, 0.003) if $slow;
		my $n = sysread($sock, $buf, $slow ? 8192 : 65536);
		die "read: $!\n" unless defined $n;
		last if $n == 0;
		$got += $n;
		$md5->add($buf);
	}
	return ($got, $md5->hexdigest);
}

sub line {
	my ($sock) = @_;
	my $l = '';
	while (1) {
		my $c;
		my $n = sysread($sock, $c, 1);
		return $l if !$n;
		$l .= $c;
		return $l if $c eq "\n";
	}
}

sub reply {
	my ($sock) = @_;
	my ($all, $l) = ('', '');
	do { $l = line($sock); $all .= $l } while ($l =~ /^\d{3}-/);
	return $all;
}

sub to_starttls {
	my ($sock) = @_;
	reply($sock) =~ /^220/ or die "no greeting\n";
	print $sock "EHLO tunnel.example.org\r\n";
	reply($sock) =~ /STARTTLS/ or die "no STARTTLS offered\n";
	print $sock "STARTTLS\r\n";
	my $r = reply($sock);
	$r =~ /^220/ or die "STARTTLS answered: $r";
}

# The MX's side up to its 220 to STARTTLS: listens, takes one connection.
sub accept_to_starttls {
	my ($name) = @_;
	my $l = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 5,
				      ReuseAddr => 1, Proto => 'tcp') or die "listen: $!\n";
	print "listening\n";
	my $c = $l->accept or die "accept: $!\n";
	$c->autoflush(1);
	print $c "220 $name ESMTP test\r\n";
	line($c) =~ /^EHLO/i or die "no EHLO\n";
	print $c "250-$name\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
	line($c) =~ /^STARTTLS/i or die "no STARTTLS\n";
	print $c "220 2.0.0 Ready to start TLS\r\n";
	return $c;
}

$| = 1;
if ($mode eq 'server') {
	my $c = accept_to_starttls('tunnel.example.net');
	my ($got, $digest) = read_all($c);
	print "server got $got $digest\n";
	my $md5 = Digest::MD5->new;
	my $sent = send_stream($c, $arg, $md5);
	print "server sent $sent " . $md5->hexdigest . "\n";
	close($c);
} elsif ($mode eq 'client') {
	my $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!\n";
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, 16384) if $slow;
	$s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton($addr)))
		or die "connect: $!\n";
	$s->autoflush(1);
	to_starttls($s);
	my $md5 = Digest::MD5->new;
	my $sent = send_stream($s, $arg, $md5);
	print "client sent $sent " . $md5->hexdigest . "\n";
	shutdown($s, SHUT_WR) or die "shutdown: $!\n";
	my ($got, $digest) = read_all($s);
	print "client got $got $digest\n";
} elsif ($mode eq 'abrupt-mx') {
	require IO::Socket::SSL;
	my $c = accept_to_starttls('abrupt.example.net');
	IO::Socket::SSL->start_SSL($c, SSL_server => 1, SSL_cert_file => $arg,
				   SSL_key_file => $key) or die "TLS: " . IO::Socket::SSL::errstr() . "\n";
	while (defined(my $l = $c->getline)) {
		if ($l =~ /^EHLO/i) { print $c "250 abrupt.example.net\r\n"; }
		elsif ($l =~ /^DATA/i) {
			print $c "354 go ahead\r\n";
			while (defined(my $b = $c->getline)) { last if $b eq ".\r\n"; }
			# corked: the 250 and the FIN leave in one segment, so
			# the proxy reads them in one go
			setsockopt($c, IPPROTO_TCP, TCP_CORK, 1) or die "TCP_CORK: $!\n";
			print $c "250 2.0.0 queued as ABRUPT\r\n";
			$c->close(SSL_no_shutdown => 1);	# no close_notify: a bare FIN
			print "closed abruptly\n";
			exit 0;
		} else { print $c "250 2.0.0 ok\r\n"; }
	}
} elsif ($mode eq 'fin-then-reset') {
	my $c = accept_to_starttls('fin.example.net');
	shutdown($c, SHUT_WR);
	my $buf;
	sysread($c, $buf, 1);
	setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
	close($c);
	print "reset\n";
} elsif ($mode eq 'poke') {
	my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
				      Timeout => 10) or die "connect: $!\n";
	$s->autoflush(1);
	to_starttls($s);
	read_all($s);	# the other end's FIN: reads say EOF from now on
	syswrite($s, "x", 1);
	# a reset shows in the TCP state (TCP_CLOSE, 7), not in a read
	my $t0 = time;
	while (time - $t0 < $arg) {
		my $info = getsockopt($s, IPPROTO_TCP, TCP_INFO);
		if (defined $info && unpack('C', $info) == 7) {
			printf "closed after %d ms\n", (time - $t0) * 1000;
			exit 0;
		}
		select(undef, undef, undef, 0.05);
	}
	print "not closed\n";
} elsif ($mode eq 'handshake') {
	my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
				      Timeout => 10) or die "connect: $!\n";
	$s->autoflush(1);
	to_starttls($s);
	print $s "GARBAGE INSTEAD OF A CLIENTHELLO\r\n\r\n" if $arg eq 'garbage';
	my $t0 = time;
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	while (time - $t0 < 30) {
		my $r = $rin;
		next unless select($r, undef, undef, 0.1);
		my $buf;
		my $n = sysread($s, $buf, 4096);
		if (!defined $n || $n == 0) {
			printf "closed after %d ms\n", (time - $t0) * 1000;
			exit 0;
		}
	}
	print "not closed\n";
} else {
	die "unknown mode $mode\n";
}
