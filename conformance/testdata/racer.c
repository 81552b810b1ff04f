/*
 * The attacker of security_ptrace_racer.rs: a container process that polls
 * /proc as fast as it can and, for every other process it sees, reports
 * (once per finding) what a holder of CAP_SYS_PTRACE reaches through it:
 *   see PID LINK      it saw the process, whose /proc/PID/exe reads LINK
 *   exe PID DEV INO   the file behind /proc/PID/exe (opened, as CVE-2019-5736 did)
 *   root PID DEV INO  /proc/PID/root is not this container's root, but that
 *   cwd PID DEV INO   /proc/PID/cwd is on no path below this container's root,
 *                     but the root of the process (the test knows which roots
 *                     are containers')
 *   dirfd PID N       /proc/PID/fd/N is an open directory
 * argv: racer SECONDS REPORT. Ends with "done LOOKS" (how many looks it took).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char seen[4096][48];
static int nseen;

static void report(FILE *out, const char *line)
{
	for (int i = 0; i < nseen; i++)
		if (strcmp(seen[i], line) == 0)
			return;
	if (nseen < 4096)
		snprintf(seen[nseen++], sizeof seen[0], "%s", line);
	fprintf(out, "%s\n", line);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	FILE *out = fopen(argv[2], "w");
	if (!out)
		return 2;
	setvbuf(out, NULL, _IOLBF, 0);
	struct stat me;
	if (stat("/", &me) != 0)
		return 2;
	int self = getpid();
	time_t end = time(NULL) + atoi(argv[1]);
	long looks = 0;
	char path[320], line[48];
	struct stat st;
	while (time(NULL) < end) {
		DIR *proc = opendir("/proc");
		struct dirent *e;
		while (proc && (e = readdir(proc))) {
			int pid = atoi(e->d_name);
			if (pid <= 0 || pid == self)
				continue;
			looks++;
			snprintf(path, sizeof path, "/proc/%d/exe", pid);
			char link[32] = "?";
			ssize_t got = readlink(path, link, sizeof link - 1);
			link[got > 0 ? got : 1] = 0;
			snprintf(line, sizeof line, "see %d %s", pid, link);
			report(out, line);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				if (fstat(fd, &st) == 0) {
					snprintf(line, sizeof line, "exe %d %lu %lu", pid,
						 (unsigned long)st.st_dev, (unsigned long)st.st_ino);
					report(out, line);
				}
				close(fd);
			}
			snprintf(path, sizeof path, "/proc/%d/root/", pid);
			if (stat(path, &st) == 0 && (st.st_dev != me.st_dev || st.st_ino != me.st_ino)) {
				snprintf(line, sizeof line, "root %d %lu %lu", pid,
					 (unsigned long)st.st_dev, (unsigned long)st.st_ino);
				report(out, line);
			}
			snprintf(path, sizeof path, "/proc/%d/cwd", pid);
			char target[256];
			ssize_t n = readlink(path, target, sizeof target - 1);
			if (n > 0) {
				target[n] = 0;
				struct stat there, via;
				snprintf(path, sizeof path, "/proc/%d/cwd/", pid);
				int reachable = target[0] == '/' && stat(target, &there) == 0 &&
						stat(path, &via) == 0 && there.st_dev == via.st_dev &&
						there.st_ino == via.st_ino;
				if (!reachable && stat(path, &via) == 0) {
					snprintf(line, sizeof line, "cwd %d %lu %lu", pid,
						 (unsigned long)via.st_dev, (unsigned long)via.st_ino);
					report(out, line);
				}
			}
			snprintf(path, sizeof path, "/proc/%d/fd", pid);
			DIR *fds = opendir(path);
			struct dirent *f;
			while (fds && (f = readdir(fds))) {
				if (f->d_name[0] == '.')
					continue;
				snprintf(path, sizeof path, "/proc/%d/fd/%s", pid, f->d_name);
				if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
					snprintf(line, sizeof line, "dirfd %d %s", pid, f->d_name);
					report(out, line);
				}
			}
			if (fds)
				closedir(fds);
		}
		if (proc)
			closedir(proc);
	}
	fprintf(out, "done %ld\n", looks);
	return 0;
}
