<?php
// php_mail.php - one message through PHP's mail(), whose sendmail_path is
// msmtp (the interoperability matrix's PHP sender), as a PHP site sends it.
//
// Usage: php -d sendmail_path='msmtp -C RC -t -i' php_mail.php FILE FROM
//
// FILE is the message (LF). mail() takes To and Subject apart and writes
// them first itself; the other headers go as its additional headers, in
// their order, the body as the message. Exits 0 when mail() says true.
if ($argc != 3) {
	fwrite(STDERR, "usage: php php_mail.php FILE FROM\n");
	exit(2);
}
$msg = file_get_contents($argv[1]);
if ($msg === false)
	exit(2);
$split = strpos($msg, "\n\n");
$head = substr($msg, 0, $split);
$body = substr($msg, $split + 2);
// mail() ends the message with a line ending itself
if (substr($body, -1) === "\n")
	$body = substr($body, 0, -1);
$to = $subject = "";
$rest = [];
foreach (explode("\n", $head) as $line) {
	if (strncasecmp($line, "To: ", 4) == 0)
		$to = substr($line, 4);
	elseif (strncasecmp($line, "Subject: ", 9) == 0)
		$subject = substr($line, 9);
	else
		$rest[] = $line;
}
$ok = mail($to, $subject, $body, implode("\n", $rest), "-f" . $argv[2]);
echo $ok ? "accepted\n" : "mail() returned false\n";
exit($ok ? 0 : 1);
