/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * events_checks.c - the events file's writer (proxy/events.c), checked
 * apart from any dialogue, before them ("test_relay DIR events" runs it
 * alone): the file's mode, the paths it refuses (a symbolic link, a
 * directory, a FIFO), a line read back whole, and a writer stuck on a
 * full pipe that none of the workers' calls waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "relay_test.h"

#define EVENTS_CALLS		100000
#define EVENTS_CALLS_MAX_NS	(1000 * MS)	/* all of them, with the writer stuck */
#define EVENTS_CLOSE_MAX_NS	(2000 * MS)	/* a stop gives a stuck file that long */
#define EVENTS_FIFO_MAX_NS	(500 * MS)

static const struct sg_message_event events_sample = {
	.source = "192.0.2.10:40000", .mx = "198.51.100.25:25", .helo = "vm1.example.org",
	.mail_from = "alice@example.org", .rcpts = 2, .rcpt_domains = "example.net,example.com",
	.size = 1234, .message_id = "<1@vm1.example.org>", .ref = "SG0000000000000000",
	.verdict = "accept", .reason = "clean", .mx_reply = "250 2.0.0 Ok: queued as 4F2A1",
};

static mode_t mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

/* The file's text (NUL-terminated) into buf. */
static size_t read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

static void events_modes(const char *dir)
{
	char path[300], name[200], why[200];
	mode_t old = umask(0);
	int fd;

	snprintf(path, sizeof(path), "%s/created.log", dir);
	snprintf(why, sizeof(why), "sg_events_open failed");
	if (sg_events_open(path) == 0)
		snprintf(why, sizeof(why), "its mode is %04o", (unsigned)mode_of(path));
	sg_events_close();
	report(mode_of(path) == 0640, "events: a new file is created 0640 under umask 0", why);

	snprintf(path, sizeof(path), "%s/existing.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
	if (fd >= 0)
		close(fd);
	snprintf(why, sizeof(why), "sg_events_open failed");
	if (sg_events_open(path) == 0)
		snprintf(why, sizeof(why), "its mode is %04o", (unsigned)mode_of(path));
	sg_events_close();
	snprintf(name, sizeof(name), "events: an existing file of mode 0666 is made 0640");
	report(mode_of(path) == 0640, name, why);
	umask(old);
}

static void events_refusals(const char *dir)
{
	char path[300], target[300], why[200];
	int reader, ret;

	/* a link to a file, and one to a file that is not there */
	snprintf(target, sizeof(target), "%s/target.log", dir);
	snprintf(path, sizeof(path), "%s/link.log", dir);
	close(open(target, O_WRONLY | O_CREAT | O_EXCL, 0600));
	if (symlink(target, path))
		perror("symlink");
	ret = sg_events_open(path);
	if (!ret) {
		sg_event_message(&events_sample);
		sg_events_close();
	}
	{
		struct stat st;
		long long size = stat(target, &st) ? -1 : (long long)st.st_size;

		snprintf(why, sizeof(why), "sg_events_open returned %d; the link's target has %lld "
			 "bytes", ret, size);
		report(ret == -1 && size == 0, "events: a symbolic link to a file is refused",
			    why);
	}
	snprintf(target, sizeof(target), "%s/nowhere.log", dir);
	snprintf(path, sizeof(path), "%s/dangling.log", dir);
	if (symlink(target, path))
		perror("symlink");
	ret = sg_events_open(path);
	if (!ret)
		sg_events_close();
	snprintf(why, sizeof(why), "sg_events_open returned %d; the link's target %s", ret,
		 mode_of(target) == (mode_t)-1 ? "was not made" : "was made");
	report(ret == -1 && mode_of(target) == (mode_t)-1,
		    "events: a symbolic link to nowhere is refused, its target not made", why);

	ret = sg_events_open(dir);
	if (!ret)
		sg_events_close();
	snprintf(why, sizeof(why), "sg_events_open returned %d", ret);
	report(ret == -1, "events: a directory is refused", why);

	snprintf(path, sizeof(path), "%s/fifo", dir);
	if (mkfifo(path, 0600))
		perror("mkfifo");
	reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ret = sg_events_open(path);
	if (!ret)
		sg_events_close();
	if (reader >= 0)
		close(reader);
	snprintf(why, sizeof(why), "sg_events_open returned %d", ret);
	report(ret == -1, "events: a FIFO (with a reader) is refused", why);
}

/* A FIFO nobody reads: open(2) for writing waits for a reader, so it is
 * tried in a child, given EVENTS_FIFO_MAX_NS. */
static void events_fifo_no_reader(const char *dir)
{
	char path[300], why[200];
	uint64_t deadline = sg_now_ns() + EVENTS_FIFO_MAX_NS;
	int status = 0, done = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/fifo", dir);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(sg_events_open(path) == -1 ? 0 : 1);
	while (pid > 0 && !(done = waitpid(pid, &status, WNOHANG) == pid) && sg_now_ns() < deadline)
		usleep(10000);
	if (pid > 0 && !done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(why, sizeof(why), "sg_events_open had not returned after %llu ms: open(2) "
			 "waits for a reader (no O_NONBLOCK)",
			 (unsigned long long)(EVENTS_FIFO_MAX_NS / MS));
	} else {
		snprintf(why, sizeof(why), "the child exited %d", WIFEXITED(status) ?
			 WEXITSTATUS(status) : -1);
	}
	report(done && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "events: a FIFO with no reader is refused at once, not waited on", why);
}

static void events_line(const char *dir)
{
	static char text[16384];
	char path[300], value[300], why[400];
	size_t n;

	snprintf(path, sizeof(path), "%s/line.log", dir);
	if (sg_events_open(path)) {
		report(false, "events: a message line is written and reads back",
			    "sg_events_open failed");
		return;
	}
	sg_event_message(&events_sample);
	sg_events_close();	/* what is queued is written first */
	n = read_text(path, text, sizeof(text));
	snprintf(why, sizeof(why), "the file holds: %.300s", text);
	report(n > 2 && text[n - 1] == '\n' && !memchr(text, '\n', n - 1) &&
		    !strncmp(text, "{\"event\":\"message\"", 18) &&
		    json_field(text, "mail_from", value, sizeof(value)) &&
		    !strcmp(value, "alice@example.org") &&
		    json_field(text, "mx_reply", value, sizeof(value)) &&
		    !strcmp(value, "250 2.0.0 Ok: queued as 4F2A1") &&
		    json_field(text, "rcpts", value, sizeof(value)) && !strcmp(value, "2"),
		    "events: a message line is written and reads back", why);
}

static void *events_closer(void *arg)
{
	(void)arg;
	sg_events_close();
	return NULL;
}

/*
 * The events to "-" with stdout a pipe nobody reads: the writer thread
 * blocks in write(2) once the pipe is full, and the callers must not wait
 * for it. Nothing may be printed meanwhile (stdout is the pipe): the
 * results are reported once it is back.
 */
static void events_stuck_writer(void)
{
	uint64_t t0, calls_ns, close_ns = 0;
	size_t bytes = 0, lines = 0, bad = 0, line_len = 0;
	int pipe_fd[2], saved, in_pipe = -1, pipe_size, closed = 0;
	char why[400], name[200], buf[65536], first = 0, last = 0;
	pthread_t closer;
	struct timespec until;

	if (pipe2(pipe_fd, O_CLOEXEC)) {
		report(false, "events: a stuck writer", strerror(errno));
		return;
	}
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(pipe_fd[1], STDOUT_FILENO);
	close(pipe_fd[1]);
	if (sg_events_open("-")) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
		close(pipe_fd[0]);
		report(false, "events: a stuck writer", "sg_events_open(\"-\") failed");
		return;
	}
	t0 = sg_now_ns();
	for (int i = 0; i < EVENTS_CALLS; i++)
		sg_event_message(&events_sample);
	calls_ns = sg_now_ns() - t0;
	usleep(50000);	/* the writer has filled the pipe, and waits */
	ioctl(pipe_fd[0], FIONREAD, &in_pipe);
	pipe_size = fcntl(pipe_fd[0], F_GETPIPE_SZ);

	/* the close, with the writer stuck; then the pipe is read, which
	 * lets a stuck writer go on (and a close waiting for it return) */
	t0 = sg_now_ns();
	pthread_create(&closer, NULL, events_closer, NULL);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)EVENTS_CLOSE_MAX_NS;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	if (pthread_timedjoin_np(closer, NULL, &until) == 0) {
		closed = 1;
		close_ns = sg_now_ns() - t0;
	}
	fcntl(pipe_fd[0], F_SETFL, O_NONBLOCK);
	for (int joined = closed;;) {
		ssize_t n = read(pipe_fd[0], buf, sizeof(buf));

		if (n > 0) {
			/* whole lines: each begins with '{' and ends in "}\n" */
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] != '\n') {
					if (!line_len++)
						first = buf[i];
					last = buf[i];
					continue;
				}
				lines++;
				bad += first != '{' || last != '}';
				line_len = 0;
			}
			bytes += (size_t)n;
			continue;
		}
		if (joined)
			break;
		if (pthread_tryjoin_np(closer, NULL) == 0) {
			joined = 1;
			continue;	/* what the writer wrote before it ended */
		}
		usleep(1000);
	}
	close(pipe_fd[0]);
	dup2(saved, STDOUT_FILENO);
	close(saved);

	printf("# events: %d calls with the writer stuck took %llu ms; %zu lines (%zu bytes) "
	       "went through, the rest were dropped\n", EVENTS_CALLS,
	       (unsigned long long)(calls_ns / MS), lines, bytes);
	snprintf(name, sizeof(name), "events: %d lines made with the writer stuck take under "
		 "%llu ms (none waits for it)", EVENTS_CALLS,
		 (unsigned long long)(EVENTS_CALLS_MAX_NS / MS));
	snprintf(why, sizeof(why), "they took %llu ms", (unsigned long long)(calls_ns / MS));
	report(calls_ns < EVENTS_CALLS_MAX_NS, name, why);
	snprintf(why, sizeof(why), "%d bytes in a pipe of %d", in_pipe, pipe_size);
	report(in_pipe >= 0 && in_pipe <= pipe_size,
		    "events: the stuck pipe holds only what fit", why);
	snprintf(why, sizeof(why), "%zu lines of %d went through, %zu not whole, %s", lines,
		 EVENTS_CALLS, bad, line_len ? "the last one cut" : "the last one whole");
	report(lines > 0 && lines < EVENTS_CALLS && !bad && !line_len,
		    "events: the queue dropped what it could not hold, whole lines went through",
		    why);
	snprintf(why, sizeof(why), "sg_events_close had not returned after %llu ms: it joins the "
		 "writer thread, blocked in write(2) on the full pipe (it returned once the pipe "
		 "was read)", (unsigned long long)(EVENTS_CLOSE_MAX_NS / MS));
	if (closed)
		snprintf(why, sizeof(why), "it took %llu ms", (unsigned long long)(close_ns / MS));
	report(closed, "events: sg_events_close returns while the writer is stuck", why);
}

/* Every check of the events file, in a temporary directory of its own. */
void events_checks(void)
{
	char dir[] = "/tmp/sg-relay-events-test-XXXXXX";
	const char *names[] = { "created.log", "existing.log", "target.log", "link.log",
				"dangling.log", "fifo", "line.log" };

	sg_log_init("test_relay events");
	if (!mkdtemp(dir)) {
		report(false, "events: a temporary directory", strerror(errno));
		return;
	}
	events_modes(dir);
	events_refusals(dir);
	events_fifo_no_reader(dir);
	events_line(dir);
	events_stuck_writer();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[300];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}
