/*
 * The waiter: what a created container's init becomes while it waits for
 * `start` (see docs/waiter.md). A few KiB, no libc, raw x86_64 syscalls, so
 * the waiting process holds none of the runtime's address space.
 *
 * argv: waiter REPORT_FD SPAWN GO_FD PDEATH_FD SESSION BARRIER_FD BPF_FD BPF_LEN BPF_FLAGS PATH ARGV0 ...
 *   REPORT_FD   -1, or a pipe to the runtime: the waiter writes there the pid
 *               of the process that will run PATH (4 bytes; 0 for itself); a
 *               forked one writes its errno there if its execve fails
 *   SPAWN       1: fork the process that runs PATH (CLONE_PARENT: a child of
 *               the runtime, in the pid namespace the caller set for its
 *               children) and exit once the runtime's go-ahead came; 0: run
 *               it here (docs/security.md: nothing of the runtime is ever
 *               visible in the container)
 *   GO_FD       -1, or the runtime's socket: wait for a byte (its go-ahead)
 *               after the report; end-of-file means the runtime gave up, and
 *               the process must not outlive it
 *   PDEATH_FD   -1, or the runtime's pidfd: a forked process dies with it
 *               (a foreground `run`; the caller's own death signal does not
 *               pass to a child)
 *   SESSION     1: the forked process makes a new session with its stdin, a
 *               terminal, as the controlling one (the caller's would hang
 *               up when the caller exits); else 0
 *   BARRIER_FD  the start barrier's FIFO, read until `start` writes a byte,
 *               or -1 not to wait
 *   BPF_FD      a memfd holding the seccomp program, or -1 for none
 *   BPF_LEN     its length in instructions
 *   BPF_FLAGS   SECCOMP_FILTER_FLAG_* bits, as libseccomp would pass them
 *   PATH        the user's program, resolved by the init before `create` returned
 * envp is the user's environment, passed on unchanged.
 * Every failure exits 1: what the init did when its own exec failed after
 * `start` (nobody is left to hear the reason).
 */

typedef unsigned long u64;

#define SYS_read 0
#define SYS_close 3
#define SYS_fcntl 72
#define SYS_mmap 9
#define SYS_clone 56
#define SYS_execve 59
#define SYS_kill 62
#define SYS_poll 7
#define SYS_waitid 247
#define SYS_ioctl 16
#define SYS_setsid 112
#define TIOCSCTTY 0x540E
#define SYS_write 1
#define SYS_prctl 157
#define SYS_exit_group 231
#define SYS_seccomp 317

#define F_SETFD 2
#define FD_CLOEXEC 1
#define PR_SET_DUMPABLE 4
#define PR_SET_PDEATHSIG 1
#define SIGKILL 9
#define POLLIN 1
#define P_ALL 0
#define WEXITED 4
#define WNOHANG 1
#define WNOWAIT 0x01000000
#define CLONE_PARENT 0x8000
#define PR_SET_NAME 15
#define SECCOMP_SET_MODE_FILTER 1
#define PROT_READ 1
#define MAP_PRIVATE 2
#define EINTR 4

static long sys3(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

static void __attribute__((noreturn)) fail_with(long code)
{
	for (;;)
		sys3(SYS_exit_group, code, 0, 0);
}

static void __attribute__((noreturn)) fail(void)
{
	fail_with(1);
}

/* Before the report, the runtime waits for the waiter and names the step
 * that failed by its exit status (create/mod.rs). */
#define FAILED_ARGS 121
#define FAILED_REPORT_FD 122
#define FAILED_CLONE 123
#define FAILED_REPORT 124

/* A decimal number, or -1 for "-1"; anything else fails. */
static long number(const char *s)
{
	long value = 0;
	int negative = 0;
	if (!s || !*s)
		fail();
	if (*s == '-') {
		negative = 1;
		s++;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			fail();
		value = value * 10 + (*s - '0');
	}
	return negative ? -value : value;
}

/* Wait for the runtime's go-ahead on `go` (-1: none): a byte, not end-of-file. */
static int go_ahead(long go)
{
	if (go < 0)
		return 1;
	char byte;
	long got;
	do
		got = sys3(SYS_read, go, (long)&byte, 1);
	while (got == -EINTR);
	return got > 0;
}

struct sock_fprog {
	unsigned short len;
	void *filter;
};

void __attribute__((noreturn, used)) waiter_main(long *stack)
{
	/* The exec made us dumpable again: nothing in the container may open our
	 * descriptors or memory through /proc (docs/waiter.md has the window). */
	sys3(SYS_prctl, PR_SET_DUMPABLE, 0, 0);
	sys3(SYS_prctl, PR_SET_NAME, (long)"berth-waiter", 0);
	long argc = stack[0];
	char **argv = (char **)(stack + 1);
	char **envp = argv + argc + 1;
	if (argc < 11)
		fail_with(FAILED_ARGS);
	long report = number(argv[1]);
	long spawn = number(argv[2]);
	long go = number(argv[3]);
	long pdeath = number(argv[4]);
	long session = number(argv[5]);
	long barrier = number(argv[6]);
	long bpf_fd = number(argv[7]);
	long bpf_len = number(argv[8]);
	long bpf_flags = number(argv[9]);
	/* The user's exec closes the report pipe: the runtime reads end-of-file then. */
	if (report >= 0 && sys3(SYS_fcntl, report, F_SETFD, FD_CLOEXEC) != 0)
		fail_with(FAILED_REPORT_FD);
	if (spawn) {
		/* fork-like: no new stack, a copy of this one. */
		long child = sys6(SYS_clone, CLONE_PARENT, 0, 0, 0, 0, 0);
		if (child < 0)
			fail_with(FAILED_CLONE);
		if (child > 0) {
			int pid = (int)child;
			if (report >= 0 && sys3(SYS_write, report, (long)&pid, sizeof pid) != sizeof pid) {
				sys3(SYS_kill, child, SIGKILL, 0);
				fail_with(FAILED_REPORT);
			}
			if (!go_ahead(go)) {
				sys3(SYS_kill, child, SIGKILL, 0);
				fail();
			}
			sys3(SYS_exit_group, 0, 0, 0);
		}
		if (go >= 0) {
			/* create's: nobody reads the report once the runtime is gone. */
			sys3(SYS_close, go, 0, 0);
			sys3(SYS_close, report, 0, 0);
			report = -1;
		}
		if (pdeath >= 0) {
			/* The runtime may have died before the death signal was set:
			 * waitid takes the lock its exit holds while reparenting us, so
			 * its pidfd is read after both or neither (process.rs). */
			char info[128];
			struct pollfd { int fd; short events; short revents; } gone = { (int)pdeath, POLLIN, 0 };
			if (sys3(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0) != 0)
				fail();
			sys6(SYS_waitid, P_ALL, 0, (long)info, WEXITED | WNOHANG | WNOWAIT, 0, 0);
			if (sys3(SYS_poll, (long)&gone, 1, 0) != 0)
				fail();
			sys3(SYS_close, pdeath, 0, 0);
		}
		if (session && (sys3(SYS_setsid, 0, 0, 0) < 0 || sys3(SYS_ioctl, 0, TIOCSCTTY, 0) != 0))
			fail();
	} else {
		int self = 0;
		if (report >= 0 && sys3(SYS_write, report, (long)&self, sizeof self) != sizeof self)
			fail_with(FAILED_REPORT);
		if (!go_ahead(go))
			fail();
		if (go >= 0)
			sys3(SYS_close, go, 0, 0);
		if (report >= 0)
			sys3(SYS_close, report, 0, 0);
	}
	if (barrier >= 0) {
		/* Held until the exec of the user's program, which closes it: `start`
		 * returns when the FIFO hangs up, so only once that exec is done. */
		if (sys3(SYS_fcntl, barrier, F_SETFD, FD_CLOEXEC) != 0)
			fail();
		char byte;
		long got;
		do
			got = sys3(SYS_read, barrier, (long)&byte, 1);
		while (got == -EINTR);
		if (got < 0)
			fail();
	}
	if (bpf_fd >= 0) {
		long program = sys6(SYS_mmap, 0, bpf_len * 8, PROT_READ, MAP_PRIVATE, bpf_fd, 0);
		if (program < 0 && program > -4096)
			fail();
		sys3(SYS_close, bpf_fd, 0, 0);
		struct sock_fprog prog = { (unsigned short)bpf_len, (void *)program };
		if (sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, bpf_flags, (long)&prog) != 0)
			fail();
	}
	int error = (int)-sys3(SYS_execve, (long)argv[10], (long)(argv + 11), (long)envp);
	if (spawn && report >= 0)
		sys3(SYS_write, report, (long)&error, sizeof error);
	fail();
}

__asm__(
	".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call waiter_main\n"
	"	hlt\n"
);
