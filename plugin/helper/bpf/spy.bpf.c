// SPDX-License-Identifier: GPL-2.0
/* docker spy's BPF engine: count the system calls of a few cgroup v2 subtrees, in the kernel.
 *
 * Built ahead of time into spy.bpf.o by build.sh (beside this file) with Debian's clang, and
 * loaded by the helper through libbpf (helper/bpf.py). No CO-RE and no BTF-typed attach points:
 * every kernel structure read here is laid out by the helper at load time (CONFIG below), so the
 * object loads on kernels without /sys/kernel/btf/vmlinux, on x86_64 and arm64 alike.
 *
 * Where a call is counted:
 * - raw_syscalls:sys_exit (raw tracepoint; args: the task's pt_regs, the return value), once,
 *   when it returns: the syscall number is read from pt_regs (orig_ax on x86_64, syscallno on
 *   arm64), a failure is a return value in [-4095, -1] (the kernel's own IS_ERR_VALUE), and
 *   its errno is counted too. fork, vfork, clone and clone3 return twice, in the child with 0:
 *   only the parent's return (a pid or an error) is a call.
 * - syscalls:sys_enter_{exit,exit_group,rt_sigreturn}: exit and exit_group never return, and
 *   after rt_sigreturn the kernel sets the saved syscall number to -1 (so that the call is not
 *   restarted), so no exit tracepoint can name it. These per-syscall tracepoints fire for their
 *   own syscall alone.
 * - With latency on, raw_syscalls:sys_enter stamps the start of each call of a target thread.
 *
 * Which task is a target's: bpf_get_current_ancestor_cgroup_id(level) at each level where a
 * target's cgroup sits (a handful at most), looked up in `targets`. A task in a cgroup below a
 * target's (systemd inside a container, Docker in Docker) is counted as the target's, as perf
 * counts it. A task inside two nested targets is counted for both, as perf does.
 * Calls made through the 32-bit entry points (compat) carry numbers of the 32-bit table: they
 * are counted apart (`other`), never under a 64-bit number.
 *
 * By process (CONFIG.by_process, off unless asked for: then the verifier drops that code and
 * the default path costs what it did): each call is also counted for its process (thread
 * group) in `proc_calls`, once the process has an entry in `procs`. A target admits at most
 * CONFIG.max_procs processes (a few more where CPUs admit at once: the check and the count
 * are not one atomic step); the calls of the rest are not kept per process: the helper gets
 * them as the target's counts less its processes', so no call is lost, and `folded` counts
 * how many processes that was. An entry keeps the process's command name (at its first call,
 * after an execve and at exit_group); the helper reads the rest from /proc while it runs (its
 * pid in the container: the target's pid namespace is not the helper's to open).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NR_SLOTS 512       /* native syscall numbers below this get array slots */
#define MAX_LEVELS 8
#define FEW_TARGETS 8      /* up to this many, compared in place; more, looked up in `targets` */
#define MAX_ERRNO 4095
#define ABI_COMPAT 1

/* Laid out by the helper before load (helper/bpf.py mirrors it); frozen, so the verifier
 * treats it as constants. The one variable in .rodata. */
struct config {
	__u32 regs_off;       /* where the window of pt_regs read at exit starts */
	__u32 nr_word;        /* the syscall number: 64-bit word of that window ... */
	__u32 nr_is_s32;      /* ... and whether only its low 32 bits are the number */
	__u32 mode_word;      /* the word that tells a compat task ... */
	__u64 compat_mask;    /* ... compat when (word & mask) == value */
	__u64 compat_value;
	__u32 latency;        /* stamp calls at sys_enter, sum their time at sys_exit */
	__u32 pad;
	__u8 twice[NR_SLOTS]; /* 1: the syscall returns twice (fork, vfork, clone, clone3) */
	__u32 twice_compat[4]; /* their numbers in the 32-bit table (0: none) */
	__u32 by_process;     /* count each process's calls too */
	__u32 max_procs;      /* processes kept per target */
	__u32 execve_nr;      /* native numbers: a command name changes after these return ... */
	__u32 execveat_nr;
	__u32 exit_group_nr;  /* ... and is final at this one */
	__u32 pad2;
};

const volatile struct config CONFIG = {};

/* What may change while the programs run: where to look, and whether to count. With few
 * targets their cgroup ids are compared here, which costs a task that is no target less than
 * a hash lookup: every syscall on the host pays that check. */
struct control {
	__u32 enabled;
	__u32 n_levels;
	__u32 levels[MAX_LEVELS];
	__u32 n_ids;  /* 0: look the targets up in `targets` */
	__u32 pad;
	__u64 ids[FEW_TARGETS];
	__u32 slots[FEW_TARGETS];
	__u64 since_ns; /* with latency: a stamp older than this is not the window's */
};

struct counts {
	__u64 calls;
	__u64 errors;
};

struct times {
	__u64 total_ns;
	__u64 max_ns;
};

struct other_key {
	__u16 slot;
	__u16 abi;
	__u32 nr;
};

struct errno_key {
	__u16 slot;
	__u16 err;  /* the errno, with ABI_COMPAT << 15 for a compat call */
	__u32 nr;
};

struct proc_key {
	__u32 slot;
	__u32 tgid;  /* in the host's (the initial) pid namespace */
};

struct proc {
	__u64 calls;
	__u64 errors;
	__u64 lost;    /* calls that found no room in proc_calls */
	__u32 exited;  /* it called exit_group */
	__u32 pad;
	char comm[16];
};

/* A process's calls of one syscall (err 0), or its failures with one errno */
struct call_key {
	__u32 slot;
	__u32 tgid;
	__u32 nr;
	__u16 abi;
	__u16 err;
};

struct folds {
	__u32 processes;  /* distinct processes not kept ... */
	__u32 more;       /* ... and 1 once `folded` was too full to tell them apart */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct control);
} control SEC(".maps");

/* cgroup v2 id -> target slot */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 72);
	__type(key, __u64);
	__type(value, __u32);
} targets SEC(".maps");

/* slot * NR_SLOTS + nr -> calls and failures of native syscalls, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, struct counts);
} counts SEC(".maps");

/* the same index -> 1 once a call was counted there: the reader visits only those */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u8);
} touched SEC(".maps");

/* the same index -> time spent, with latency on (else one unused entry) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, struct times);
} times SEC(".maps");

/* compat calls, and native numbers beyond the array: rare, so one shared hash */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct other_key);
	__type(value, struct counts);
} other SEC(".maps");

/* failures by errno, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct errno_key);
	__type(value, __u64);
} errnos SEC(".maps");

/* [0]: failures whose errno found no room in `errnos`; [1]: compat or out-of-range calls that
 * found no room in `other` */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* thread id -> when its current syscall entered, with latency on */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} started SEC(".maps");

/* (slot, tgid) -> the process, with --by-process (else one unused entry) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct proc_key);
	__type(value, struct proc);
} procs SEC(".maps");

/* slot -> processes admitted to `procs` */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} admitted SEC(".maps");

/* (slot, tgid, nr, abi, errno) -> a kept process's calls and failures */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct call_key);
	__type(value, struct counts);
} proc_calls SEC(".maps");

/* (slot, tgid) of the processes not kept, to count each once */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct proc_key);
	__type(value, __u8);
} folded SEC(".maps");

/* slot -> how many processes were not kept */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct folds);
} folds SEC(".maps");

static __always_inline void add_lost(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &which);

	if (n)
		*n += 1;
}

static __always_inline void add_errno(__u32 slot, __u32 abi, __u32 nr, long ret)
{
	struct errno_key key = {.slot = slot, .err = (__u16)(-ret | abi << 15), .nr = nr};
	__u64 one = 1, *n = bpf_map_lookup_elem(&errnos, &key);

	if (n) {
		*n += 1;
		return;
	}
	if (bpf_map_update_elem(&errnos, &key, &one, BPF_NOEXIST) == 0)
		return;
	n = bpf_map_lookup_elem(&errnos, &key); /* another CPU made it first */
	if (n)
		*n += 1;
	else
		add_lost(0);
}

static __always_inline void add_other(__u32 slot, __u32 abi, __u32 nr, __u64 failed)
{
	struct other_key key = {.slot = slot, .abi = abi, .nr = nr};
	struct counts fresh = {.calls = 1, .errors = failed}, *c;

	c = bpf_map_lookup_elem(&other, &key);
	if (!c && bpf_map_update_elem(&other, &key, &fresh, BPF_NOEXIST) == 0)
		return;
	if (!c)
		c = bpf_map_lookup_elem(&other, &key);
	if (!c) {
		add_lost(1);
		return;
	}
	__sync_fetch_and_add(&c->calls, 1);
	if (failed)
		__sync_fetch_and_add(&c->errors, 1);
}

/* One call of native syscall nr (< NR_SLOTS) by target `slot`: counted, and its failure. */
static __always_inline struct counts *slot_of(__u32 slot, __u32 nr, __u32 *index)
{
	__u8 *seen;

	*index = slot * NR_SLOTS + nr;
	seen = bpf_map_lookup_elem(&touched, index);
	if (seen && !*seen)
		*seen = 1;
	return bpf_map_lookup_elem(&counts, index);
}

static __always_inline int returns_twice_compat(__u32 nr)
{
	for (int i = 0; i < 4; i++)
		if (CONFIG.twice_compat[i] && CONFIG.twice_compat[i] == nr)
			return 1;
	return 0;
}

static __always_inline int target_levels(struct control **ctl)
{
	__u32 zero = 0;

	*ctl = bpf_map_lookup_elem(&control, &zero);
	if (!*ctl || !(*ctl)->enabled)
		return 0;
	return (*ctl)->n_levels;
}

static __always_inline __u32 *target_at(struct control *ctl, int i)
{
	__u64 id = bpf_get_current_ancestor_cgroup_id(ctl->levels[i]);
	__u32 n = ctl->n_ids;

	if (!n)
		return bpf_map_lookup_elem(&targets, &id);
	for (int j = 0; j < FEW_TARGETS && j < n; j++)
		if (ctl->ids[j] == id)
			return &ctl->slots[j];
	return 0;
}

static __always_inline void fold(__u32 slot, struct proc_key *key)
{
	__u8 one = 1;
	struct folds *f = bpf_map_lookup_elem(&folds, &slot);
	long err = bpf_map_update_elem(&folded, key, &one, BPF_NOEXIST);

	if (!f)
		return;
	if (err == 0)
		__sync_fetch_and_add(&f->processes, 1);
	else if (err != -17 /* EEXIST: counted already */)
		f->more = 1;
}

/* The calling process's entry for target `slot`: found, or made if the target keeps fewer
 * than max_procs; 0 for a process that is not kept. */
static __always_inline struct proc *process_of(__u32 slot, __u32 tgid)
{
	struct proc_key key = {.slot = slot, .tgid = tgid};
	struct proc *p = bpf_map_lookup_elem(&procs, &key);
	__u32 *n;

	if (p)
		return p;
	n = bpf_map_lookup_elem(&admitted, &slot);
	if (!n)
		return 0;
	if (*n >= CONFIG.max_procs) {
		fold(slot, &key);
		return 0;
	}
	struct proc fresh = {};

	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(&procs, &key, &fresh, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(n, 1);
	p = bpf_map_lookup_elem(&procs, &key); /* made here, or by another CPU just now */
	if (!p)
		fold(slot, &key); /* procs is full */
	return p;
}

static __always_inline int add_call(struct call_key *key, __u64 failed)
{
	struct counts fresh = {.calls = 1, .errors = failed}, *c;

	c = bpf_map_lookup_elem(&proc_calls, key);
	if (!c && bpf_map_update_elem(&proc_calls, key, &fresh, BPF_NOEXIST) == 0)
		return 1;
	if (!c)
		c = bpf_map_lookup_elem(&proc_calls, key);
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->calls, 1);
	if (failed)
		__sync_fetch_and_add(&c->errors, 1);
	return 1;
}

/* One call by the current process, for target `slot`: its process's counts. A global
 * function, checked once. */
__noinline int count_process(__u32 slot, __u32 nr, __u32 abi, long ret)
{
	__u32 tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	__u64 failed = ret < 0 && ret >= -MAX_ERRNO;
	struct proc *p = process_of(slot, tgid);
	struct call_key key = {.slot = slot, .tgid = tgid, .nr = nr, .abi = (__u16)abi};

	if (!p)
		return 0;
	__sync_fetch_and_add(&p->calls, 1);
	if (failed)
		__sync_fetch_and_add(&p->errors, 1);
	if (!add_call(&key, failed)) {
		__sync_fetch_and_add(&p->lost, 1);
		return 0;
	}
	if (failed) {
		key.err = (__u16)-ret;
		add_call(&key, 0); /* a failure without its errno: the helper says ELOST */
	}
	if (!abi && ((ret == 0 && (nr == CONFIG.execve_nr || nr == CONFIG.execveat_nr))
		     || nr == CONFIG.exit_group_nr)) {
		bpf_get_current_comm(p->comm, sizeof(p->comm));
		if (nr == CONFIG.exit_group_nr)
			p->exited = 1;
	}
	return 0;
}

/* One call by target `slot`, whose syscall number, ABI, return value and time are known. A
 * global function: the verifier checks it once, for any arguments, not once per caller's path
 * (a fifth of the load time it took inlined). */
__noinline int count_one(__u32 slot, long nr, __u32 compat, long ret, __u64 elapsed)
{
	__u64 failed = ret < 0 && ret >= -MAX_ERRNO;

	if (compat || nr >= NR_SLOTS) {
		if (compat && ret == 0 && returns_twice_compat((__u32)nr))
			return 0; /* the child's return of a 32-bit fork */
		add_other(slot, compat ? ABI_COMPAT : 0, (__u32)nr, failed);
		if (failed)
			add_errno(slot, compat ? ABI_COMPAT : 0, (__u32)nr, ret);
		if (CONFIG.by_process)
			count_process(slot, (__u32)nr, compat ? ABI_COMPAT : 0, ret);
		return 0;
	}
	__u32 index;
	struct counts *c = slot_of(slot, (__u32)nr, &index);

	if (!c)
		return 0;
	/* A call that returns twice is the parent's return: a pid, or an error. The child's
	 * return was never stamped at its entry: it has no time. */
	if (ret == 0 && CONFIG.twice[nr & (NR_SLOTS - 1)]) {
		elapsed = 0;
	} else {
		c->calls += 1;
		if (CONFIG.by_process)
			count_process(slot, (__u32)nr, 0, ret);
	}
	if (failed) {
		c->errors += 1;
		add_errno(slot, 0, (__u32)nr, ret);
	}
	if (elapsed) {
		struct times *t = bpf_map_lookup_elem(&times, &index);

		if (t) {
			t->total_ns += elapsed;
			if (elapsed > t->max_ns)
				t->max_ns = elapsed;
		}
	}
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int count_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct control *ctl;
	int n = target_levels(&ctl);
	long ret = (long)ctx->args[1];
	__u32 slots[MAX_LEVELS];
	__u64 regs[4], elapsed = 0;
	int found = 0;

	/* First which targets the task is in (at most one a level), then the call, read once:
	 * two short loops, which the verifier walks far faster than one that does both. */
	for (int i = 0; i < MAX_LEVELS && i < n; i++) {
		__u32 *slot = target_at(ctl, i);

		if (slot)
			slots[found++ & (MAX_LEVELS - 1)] = *slot;
	}
	if (!found)
		return 0;
	if (bpf_probe_read_kernel(regs, sizeof(regs), (void *)ctx->args[0] + CONFIG.regs_off))
		return 0;
	long nr = CONFIG.nr_is_s32 ? (long)(__s32)regs[CONFIG.nr_word & 3] : (long)regs[CONFIG.nr_word & 3];
	__u32 compat = (regs[CONFIG.mode_word & 3] & CONFIG.compat_mask) == CONFIG.compat_value;

	if (nr < 0)
		return 0; /* after rt_sigreturn: counted where it entered */
	if (CONFIG.latency) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u64 *start = bpf_map_lookup_elem(&started, &tid);

		/* A stamp of 0 is taken; one before the window is not the window's. */
		if (start && *start && *start >= ctl->since_ns)
			elapsed = bpf_ktime_get_ns() - *start;
		if (start)
			*start = 0;
	}
	for (int k = 0; k < MAX_LEVELS && k < found; k++)
		count_one(slots[k], nr, compat, ret, elapsed);
	return 0;
}

/* The context of a syscalls:sys_enter_* tracepoint program: the common trace_entry fields
 * (8 bytes), then the syscall number (the helper checks the format file says offset 8). */
struct syscall_enter {
	__u64 common;
	__s32 nr;
};

SEC("tracepoint/syscalls/sys_enter_exit_group")
int count_enter(struct syscall_enter *ctx)
{
	struct control *ctl;
	int n = target_levels(&ctl);
	__s32 nr = ctx->nr;

	if (nr < 0 || nr >= NR_SLOTS)
		return 0;
	for (int i = 0; i < MAX_LEVELS && i < n; i++) {
		__u32 *slot = target_at(ctl, i), index;
		struct counts *c;

		if (!slot)
			continue;
		c = slot_of(*slot, (__u32)nr, &index);
		if (c)
			c->calls += 1;
		if (CONFIG.by_process)
			count_process(*slot, (__u32)nr, 0, 0);
	}
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int stamp_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct control *ctl;
	int n = target_levels(&ctl);

	for (int i = 0; i < MAX_LEVELS && i < n; i++) {
		if (target_at(ctl, i)) {
			__u32 tid = (__u32)bpf_get_current_pid_tgid();
			__u64 now = bpf_ktime_get_ns(), *start = bpf_map_lookup_elem(&started, &tid);

			/* In place for a thread already known: no LRU node taken, no lock. */
			if (start)
				*start = now;
			else
				bpf_map_update_elem(&started, &tid, &now, BPF_NOEXIST);
			return 0;
		}
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
