#!/usr/bin/perl
# send_netsmtp.pl - one message through Perl's Net::SMTP (the
# interoperability matrix's Perl sender), as a Perl application sends it.
#
# Usage: send_netsmtp.pl HOST HELO FROM TO FILE [CAFILE TLSNAME]
#
# FILE is the message (CRLF); Net::SMTP's datasend dot-stuffs it. With
# CAFILE: STARTTLS, the certificate checked against CAFILE for TLSNAME.
# BODY=8BITMIME when the message has 8-bit octets. Exits 0 when accepted.
use strict;
use warnings;
use Net::SMTP;

@ARGV == 5 || @ARGV == 7 or die "usage: $0 HOST HELO FROM TO FILE [CAFILE TLSNAME]\n";
my ($host, $helo, $from, $to, $file, $ca, $name) = @ARGV;
open(my $fh, '<:raw', $file) or die "$file: $!\n";
my $data = do { local $/; <$fh> };
close $fh;
my $smtp = Net::SMTP->new($host, Port => 25, Hello => $helo, Timeout => 60)
	or die "cannot connect to $host: $@\n";
if (defined $ca) {
	$smtp->starttls(SSL_ca_file => $ca, SSL_verifycn_name => $name,
		SSL_verifycn_scheme => 'smtp', SSL_verify_mode => 1)
		or die "STARTTLS failed: " . $smtp->message . " $IO::Socket::SSL::SSL_ERROR\n";
}
my %opt;
$opt{Bits} = 8 if $data =~ /[\x80-\xff]/;
$smtp->mail($from, %opt) or die "MAIL refused: " . $smtp->code . " " . $smtp->message;
$smtp->to($to) or die "RCPT refused: " . $smtp->code . " " . $smtp->message;
$smtp->data() or die "DATA refused: " . $smtp->code . " " . $smtp->message;
# in pieces, as an application streaming a large message would
for (my $off = 0; $off < length $data; $off += 65536) {
	$smtp->datasend(substr($data, $off, 65536)) or die "datasend failed\n";
}
$smtp->dataend() or die "message refused: " . $smtp->code . " " . $smtp->message;
print "accepted: ", $smtp->code, " ", $smtp->message;
$smtp->quit;
exit 0;
