/*
 * novabox native ABI: the whole contract between TypeScript (src/sys/native.ts)
 * and C. Nothing else crosses the boundary.
 *
 * A launch plan is ONE flat, position-independent block of memory:
 *
 *   struct nb_plan_header
 *   struct nb_op ops[n_ops]
 *   struct nb_cg_step cg_steps[n_cg_steps]   (the container's cgroup, made by the monitor)
 *   bytes: NUL-terminated strings and string lists, addressed by offsets
 *
 * Every "offset" below is a byte offset from the start of the plan; 0 means
 * "none". A string list is a uint32 count followed by count uint32 string
 * offsets. The plan carries no pointers, so the same bytes are valid in the
 * CLI, in the memfd handed to the monitor, and in the monitor's mapping of it.
 * Both sides validate it (nb_plan_validate) before use.
 */
#ifndef NOVABOX_H
#define NOVABOX_H

#include <stdint.h>

#define NB_API __attribute__((visibility("default")))

#define NB_PLAN_MAGIC 0x3150424eu /* "NBP1" little-endian */
#define NB_ABI_VERSION 12u
#define NB_PLAN_MAX_BYTES (4u << 20)
#define NB_PLAN_MAX_OPS 4096u
#define NB_PLAN_MAX_CG_STEPS 256u

/* nb_plan_header.flags */
#define NB_PLAN_TTY        0x1u /* a console socket is passed: NB_OP_CONSOLE sends the pty master on it */
#define NB_PLAN_LOG        0x2u /* monitor captures init stdout/stderr into log_path */
#define NB_PLAN_PLAIN_CLONE 0x4u /* tests only: clone(2) even where clone3 could place the init
                                   (the monitor then writes cgroup.procs itself) */
#define NB_PLAN_LATE_OPS   0x8u /* this plan (n_ops = 0) is the monitor's: the ops come later in
                                   a second, whole plan that the caller writes into the memfd
                                   of nb_spawn_result.ops_fd before 'R'; the init maps and
                                   validates it after 'R' (a refused one: NB_EV_OPFAIL a = -2) */
#define NB_PLAN_CONSOLE_LOG 0x10u /* with NB_PLAN_TTY and NB_PLAN_LOG: the console socket is the
                                   monitor's own; it keeps the pty master NB_OP_CONSOLE sends
                                   and copies what the container writes to its console
                                   (/dev/console: systemd as pid 1) into the log */
#define NB_PLAN_DETACH     0x20u /* the OCI create/start split (novabox-oci): the init holds a
                                   writer of its own GO pipe once 'R' came (so the CLI that
                                   created it may exit), says NB_EV_GATE when its ops are done
                                   and it waits for 'G', which `start` writes through
                                   /proc/<init>/fd/5; the monitor exits after NB_EV_GATE (or
                                   after reaping an init whose op failed), so the init is
                                   reparented to the caller's subreaper (the engine's shim),
                                   which reaps it as it reaps runc's. With join_pid (an exec,
                                   `exec --detach`): the CLI sends 'G' itself and the monitor
                                   exits after NB_EV_GATE and NB_EV_EXEC (or NB_EV_OPFAIL) */
#define NB_PLAN_RESTORE    0x40u /* live migration's target: the init's exec is `criu restore
                                   --restore-detached --pidfile <restore_pidfile>`. Once it
                                   exited, the restored tree's root (reparented to us, its
                                   subreaper) is the init from then on: NB_EV_RESTORED says its
                                   pid (or criu's failure), and the monitor reaps it, logs its
                                   stdio pipe (criu's --inherit-fd) and writes its status */

enum nb_op_kind {
	NB_OP_MOUNT = 1,      /* s[0] source, s[1] target, s[2] fstype, s[3] data; flags = mount flags */
	NB_OP_MKDIR = 2,      /* s[1] path, n[0] mode; EEXIST is fine */
	NB_OP_MKNOD = 3,      /* s[1] path, n[0] mode (S_IFCHR|perm), n[1] major, n[2] minor */
	NB_OP_SYMLINK = 4,    /* s[0] link contents, s[1] path */
	NB_OP_MASK = 5,       /* s[1] path: /dev/null over a file, read-only empty tmpfs over a dir; ENOENT skipped */
	NB_OP_READONLY = 6,   /* s[1] path: bind onto itself, remount read-only; ENOENT skipped */
	NB_OP_SET_ROOT = 7,   /* s[1] path: later ops flagged NB_OPF_IN_ROOT resolve inside it */
	NB_OP_PIVOT_ROOT = 8, /* pivot_root into the current root dir, detach the old root */
	NB_OP_SETHOSTNAME = 9,/* s[0] hostname */
	NB_OP_SETRLIMIT = 10, /* n[0] resource, n[1] soft, n[2] hard */
	NB_OP_UNSHARE = 11,   /* flags = CLONE_NEW* */
	NB_OP_CAP_BOUND = 12, /* n[0] mask of capabilities to KEEP in the bounding set */
	NB_OP_SETGROUPS = 13, /* list = decimal gid strings */
	NB_OP_SETGID = 14,    /* n[0] gid */
	NB_OP_SETUID = 15,    /* n[0] uid; NB_OPF_KEEP_CAPS: the permitted set kept through it */
	NB_OP_CAPSET = 16,    /* n[0] effective=permitted mask, n[1] inheritable, n[2] ambient
	                         (raised after the capset; each must be in n[0] and n[1]) */
	NB_OP_NO_NEW_PRIVS = 17,
	NB_OP_CHDIR = 18,     /* s[1] path; re-checked with getcwd (CVE-2024-21626) */
	NB_OP_EXEC = 19,      /* s[0] file (searched in s[1] = PATH if it has no '/'), list argv, list2 envp;
	                         n[0] fds the process gets as 3 .. 3+n-1 from NB_FD_PRESERVE..;
	                         NB_OPF_SEALED: execute the header's exec_copy (a sealed memfd) instead */
	NB_OP_REMOUNT_RO = 20,/* s[1] path: remount an existing mount read-only, keeping its flags */
	NB_OP_CONSOLE = 21,   /* s[0] ptmx, s[1] console file: new pty from the container's devpts,
	                         slave bound on s[1] and made stdio + controlling tty, master sent
	                         to the CLI on the console socket */
	NB_OP_SECCOMP = 22,   /* load novabox's default seccomp filter (seccomp.c); n[0] 1: a system
	                         container's variant (the mount family and reboot allowed) */
	NB_OP_CGROUP_JOIN = 23, /* s[1] a cgroup v1 `tasks` file: write "0" (this thread joins it) */
	NB_OP_USERNS = 24,    /* the plan's userns: ask the monitor for the rootfs ('M') and wait
	                         for its word (the maps are written; it carries the rootfs mount
	                         if it made one), then open the host sources of the later bind
	                         mounts while host uid 0 may still reach them (the plan's own
	                         setuid(0) then makes it the namespace's root) */
	NB_OP_MOUNT_FD = 25,  /* s[1] path: attach there the rootfs mount NB_OP_USERNS received
	                         (move_mount) */
	NB_OP_WRITE = 26,     /* s[1] an existing file (NB_OPF_IN_ROOT: below the root), s[0] what to
	                         write, in one write(2): a sysctl under the container's /proc/sys,
	                         /proc/self/oom_score_adj */
	NB_OP_SETNS = 27,     /* s[1] a namespace file (a host path: /proc/<pid>/ns/net, /run/netns/x),
	                         flags = its CLONE_NEW* type: setns(2) into it (OCI namespaces[].path) */
	NB_OP_SECCOMP_PROGRAM = 28, /* s[0] a classic BPF seccomp program as hex (8 bytes an
	                         instruction: an OCI profile compiled by runtime/oci/seccomp.ts),
	                         n[1] SECCOMP_FILTER_FLAG_* bits: load it in place of NB_OP_SECCOMP's */
	NB_OP_HOOK = 29,      /* s[0] a program (resolved where the init is: an OCI createContainer
	                         hook runs before pivot_root, a startContainer one after it), list
	                         argv, list2 envp, s[1] the OCI state JSON for its stdin, n[0] its
	                         timeout in seconds (0: none): fork, exec, wait; exit status 0 or
	                         the op fails with NB_HOOK_EXITED | status, NB_HOOK_KILLED | signal
	                         or ETIMEDOUT. NB_OPF_AFTER_START: run once the gate opened (the
	                         gate is awaited before it, not before the exec); a failure is then
	                         said on the init's stderr and ends it with status 125 */
	NB_OP_KIND_MAX = 29
};

/* NB_OP_HOOK's failures other than an errno (errno values stay below 4096) */
#define NB_HOOK_EXITED 0x10000
#define NB_HOOK_KILLED 0x20000

/* nb_op.op_flags */
#define NB_OPF_IN_ROOT 0x1u /* s[1] is relative to the NB_OP_SET_ROOT dir, resolved with RESOLVE_IN_ROOT */
#define NB_OPF_AFTER_START 0x4u /* NB_OP_HOOK: after the gate (OCI startContainer) */
#define NB_OPF_NO_PIVOT 0x8u    /* NB_OP_PIVOT_ROOT: move the root mount onto / and chroot into
                                   it instead (OCI --no-pivot: a rootfs on a ramdisk, where
                                   pivot_root fails) */
#define NB_OPF_CHROOT 0x20u     /* NB_OP_PIVOT_ROOT: chroot into the root instead, no mount
                                   moved: a container without a mount namespace of its own (OCI
                                   linux.namespaces without "mount"), or an exec into one */
#define NB_OPF_KEEP_CAPS 0x10u  /* NB_OP_SETUID: PR_SET_KEEPCAPS around it, so a uid other than
                                   0 keeps the permitted set for the capset that follows (OCI
                                   ambient capabilities of a non-root process) */
#define NB_OPF_SEALED  0x2u /* NB_OP_EXEC: execveat the monitor's sealed copy of exec_copy; no host
                               file of that binary is ever reachable from inside */

struct nb_op {
	uint32_t kind;
	uint32_t op_flags;
	uint64_t flags;
	uint64_t n[3];
	uint32_t s[4];
	uint32_t list;
	uint32_t list2;
};

struct nb_plan_header {
	uint32_t magic;
	uint32_t abi;
	uint32_t size;        /* total bytes of the plan */
	uint32_t n_ops;       /* ops follow the header */
	uint64_t clone_flags; /* CLONE_NEW* for the init */
	uint32_t flags;       /* NB_PLAN_* */
	uint32_t log_path;    /* string offset: console log (NB_PLAN_LOG) */
	uint32_t status_path; /* string offset: file the monitor writes the exit status to */
	uint32_t log_max_bytes;
	uint32_t cgroup_dir;  /* string offset: cgroup v2 dir to clone the init into
	                         (CLONE_INTO_CGROUP); 0 = the CLI places the init */
	uint32_t join_pid;    /* exec: enter this process's namespaces (setns through a pidfd)
	                         before cloning; 0 = new namespaces from clone_flags */
	uint32_t join_flags;  /* CLONE_NEW* to enter with join_pid */
	uint32_t n_cg_steps;  /* cgroup steps after the ops; 0 = the CLI makes the cgroup */
	uint32_t exec_copy;   /* string offset: a host binary the monitor copies into a sealed memfd
	                         before the clone (servers' novabox-init); NB_OP_EXEC with
	                         NB_OPF_SEALED executes that copy. 0 = none */
	uint32_t userns;      /* string list offset, with CLONE_NEWUSER in clone_flags: the
	                         init's own user namespace (see below); 0 = none */
	uint32_t on_exit;     /* string list offset: a program the monitor starts (fork + execve,
	                         in a session of its own, no fds but 0..2 on /dev/null) once the
	                         init is reaped, its status written and its cgroup removed, and
	                         exits: argv, then "", then the environment (KEY=VALUE);
	                         [0] an absolute path. A server's restart policy (novabox
	                         `server _exited`); 0 = the monitor just exits */
	uint32_t pid_ns;      /* string offset: a pid namespace file (OCI namespaces[].path of type
	                         pid: /proc/<pid>/ns/pid) the monitor enters (setns) before the
	                         clone, so that the init is born in it; without CLONE_NEWPID in
	                         clone_flags and without join_pid. 0 = none */
	uint32_t restore_pidfile; /* string offset, with NB_PLAN_RESTORE: where criu writes the
	                         restored root's pid (its host pid); 0 otherwise */
	uint32_t user_ns;     /* string list offset: a user namespace joined by path (OCI
	                         namespaces[].path of type user: a Kubernetes pod's sandbox's):
	                         [0] its file; [1] uid_map, [2] gid_map text ("" = not checked),
	                         compared with the namespace's own maps once the init is in it.
	                         The monitor stays outside (host root: the cgroup, the status);
	                         a short-lived child of it enters the namespace (then pid_ns, if
	                         any, which is then that namespace's) and clones the init as the
	                         monitor's child (CLONE_PARENT), so that every namespace the init
	                         makes is owned by the joined one. Without CLONE_NEWUSER in
	                         clone_flags, without userns and join_pid. 0 = none */
};

/*
 * nb_plan_header.userns, a string list the monitor uses between the clone and NB_EV_PID:
 *   [0] uid_map text, [1] gid_map text ("0 <host base> <count>\n"), written to
 *       /proc/<init>/{uid,gid}_map by the monitor (host root: setgroups stays allowed);
 *   [2] upperdir, [3] workdir: "" = no rootfs by the monitor; else it makes the overlay
 *       itself, with host credentials (trusted.* xattrs, whiteouts and opaque dirs as
 *       on any host overlay), over each lower layer idmapped into the init's namespace
 *       (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP)), and hands the
 *       detached mount to the init for NB_OP_MOUNT_FD; nothing of the image is chowned;
 *   [4] overlay flags, comma-separated ("volatile" or "");
 *   [5] tmpfs options ("mode=0755,size=N") or "": the upper and work dirs are then made
 *       in a new tmpfs owned by the range's root ([2] and [3] are names inside it);
 *   [6] the rootfs directory (the overlay's mount point): where the monitor, in the init's
 *       mount namespace, attaches the layers for a kernel whose overlayfs takes no
 *       detached layer (Linux 6.1), before it makes the overlay ("" without a rootfs);
 *   [7..] the lower layers, topmost first (absolute host paths).
 */
#define NB_USERNS_LOWERS 7

/*
 * The container's cgroup as steps the monitor runs on the host (cgroup.c), planned by
 * src/runtime/cgroups (batch.ts). Kinds NB_CG_MKDIR..NB_CG_DEVICES run in order before
 * the clone (the init is born in the cgroup2 directory); on failure the directories
 * made are removed and NB_EV_ERROR {NB_STAGE_CGROUP, errno, step index} is sent.
 * NB_CG_OOM_COUNT and NB_CG_RMDIR run after the init was reaped.
 */
enum nb_cg_kind {
	NB_CG_MKDIR = 1,     /* s0 one directory level; EEXIST is fine unless NB_CGF_EXCL */
	NB_CG_ENABLE = 2,    /* s0 cgroup.subtree_control, s1 "memory cpu pids": "+c" for those not listed */
	NB_CG_INHERIT = 3,   /* s0 a file, s1 the parent's: copied when s0 is empty (v1 cpuset) */
	NB_CG_WRITE = 4,     /* s0 file, s1 value, one write(2); NB_CGF_OPTIONAL: ENOENT skipped */
	NB_CG_DEVICES = 5,   /* s0 cgroup v2 dir: attach the device allow-list; s1 (or 0) devices
	                        beyond it, devices.allow lines (nb_cgroup_devices_allow) */
	NB_CG_OOM_COUNT = 6, /* s0 file, s1 key: "key N" -> N, sent as NB_EV_EXIT's c */
	NB_CG_RMDIR = 7,     /* s0 dir: kill what is inside, rmdir (EBUSY retried, bounded) */
	NB_CG_CHOWN = 8,     /* s0 a cgroup2 dir or file, s1 "uid:gid": chown it (the delegated
	                        subtree of a container's user namespace root) */
	NB_CG_KIND_MAX = 8
};

#define NB_CGF_EXCL     0x1u
#define NB_CGF_OPTIONAL 0x2u

struct nb_cg_step {
	uint32_t kind;
	uint32_t flags;  /* NB_CGF_* */
	uint32_t s0;     /* string offsets */
	uint32_t s1;
};

_Static_assert(sizeof(struct nb_plan_header) == 80, "plan header ABI");
_Static_assert(sizeof(struct nb_op) == 64, "op ABI");
_Static_assert(sizeof(struct nb_cg_step) == 16, "cgroup step ABI");

/* What the monitor tells the CLI, in order, on the events pipe (16-byte records). */
enum nb_event_type {
	NB_EV_PID = 1,     /* a = init pid (in the caller's pid namespace), b = 1 if it is
	                      in cgroup_dir (cloned there, or placed by the monitor), 0 if
	                      the plan has no cgroup_dir */
	NB_EV_EXEC = 2,    /* execve succeeded (the error pipe reached EOF) */
	NB_EV_OPFAIL = 3,  /* a = op index, b = errno; a = -2: the late ops plan was refused */
	NB_EV_EXIT = 4,    /* a = wait status of the init; c = OOM kills read by
	                      NB_CG_OOM_COUNT, or -1 */
	NB_EV_ERROR = 5,   /* the monitor failed: a = stage (NB_STAGE_*), b = errno,
	                      c = the failing cgroup step with NB_STAGE_CGROUP */
	NB_EV_CGROUP = 6,  /* after NB_EV_EXIT (or NB_EV_ERROR), when the monitor made the
	                      cgroup: its removal ended; a = 0 or errno, b = failing step or -1 */
	NB_EV_GATE = 7,    /* NB_PLAN_DETACH: the init ran its ops and waits for 'G'; the monitor
	                      exits after it (the init is then the caller's subreaper's) */
	NB_EV_RESTORED = 8 /* NB_PLAN_RESTORE, after NB_EV_EXEC: criu exited; a = the restored
	                      root's pid (the init from now on), or -1 with b = criu's wait status
	                      (the monitor then exits after NB_EV_EXIT of criu) */
};

enum nb_stage {
	NB_STAGE_PLAN = 1, NB_STAGE_CLONE = 2, NB_STAGE_SYNC = 3, NB_STAGE_LOG = 4, NB_STAGE_JOIN = 5,
	NB_STAGE_CGROUP = 6, NB_STAGE_PLACE = 7, NB_STAGE_EXEC_COPY = 8,
	NB_STAGE_USERNS = 9,  /* writing the id maps (c = 0), or the idmapped rootfs: c = 1 a
	                         lower layer (open_tree, mount_setattr: EINVAL/ENOSYS = the
	                         kernel or the layer's filesystem cannot idmap), 2 the overlay
	                         (fsopen/fsconfig/fsmount), 3 the tmpfs, 4 handing it over */
	NB_STAGE_PID_NS = 10, /* entering the header's pid_ns */
	NB_STAGE_USER_NS = 11, /* the header's user_ns: entering it (c = 0), or its maps are not
	                          the ones the plan names (c = 1, errno EINVAL) */
};

struct nb_event {
	int32_t type;
	int32_t a;
	int32_t b;
	int32_t c;
};

struct nb_spawn_args {
	const char *monitor_path; /* the novabox-monitor executable */
	const char *monitor_tag;  /* its argv[1], for ps and leak checks: the cgroup path */
	int32_t stdio[3];         /* fds the init gets as 0, 1, 2 (NB_OP_CONSOLE replaces them) */
	int32_t tty;              /* 1: pass a console socket (NB_PLAN_TTY) */
	int32_t preserve_fds;     /* the caller's fds 3 .. 3+n-1 go to the monitor as
	                             NB_FD_PRESERVE.., and the init's exec makes them its 3.. (OCI
	                             --preserve-fds; the exec op's n[0] says the same n) */
};

struct nb_spawn_result {
	int32_t monitor_pid;
	int32_t init_pid;    /* -1: read NB_EV_PID from events_fd */
	int32_t events_fd;   /* read end: nb_event records from the monitor, NB_EV_PID first */
	int32_t go_fd;       /* write end: 'R' lets the init run its ops (the container
	                        directory exists), then 'G' lets it execve; close = abort */
	int32_t console_fd;  /* with tty: receive the pty master here (nb_recv_fd); else -1 */
	int32_t stage;       /* on failure: NB_STAGE_* or 0 */
	int32_t ops_fd;      /* NB_PLAN_LATE_OPS: write end of the ops plan's memfd (write the
	                        whole plan, then close it, then 'R'); else -1 */
};

/* Returns 0 or -errno. Validates the plan and starts the monitor; does not wait for it. */
NB_API int nb_spawn(const void *plan, uint32_t plan_len, const struct nb_spawn_args *args,
	     struct nb_spawn_result *out);

/* 0 if the plan is well formed, else -EINVAL; *bad_op = index of the first bad op or -1. */
NB_API int nb_plan_validate(const void *plan, uint32_t plan_len, int32_t *bad_op);

/* Receive one fd sent with SCM_RIGHTS (the pty master). fd, or -errno (-EPIPE at EOF). */
NB_API int nb_recv_fd(int32_t sock);
/* Connect to the unix socket at sock_path and send fd with SCM_RIGHTS, `name` as the bytes
 * (an OCI engine's --console-socket: the pty master, named by its slave's path). 0 or -errno. */
NB_API int nb_send_fd(const char *sock_path, int32_t fd, const char *name);

/* cgroup v2: attach the device allow-list (an eBPF program) to this cgroup dir, plus `extra`
 * (NULL or "" none): v1 devices.allow lines ("b 8:0 rwm"), newline- or comma-separated.
 * 0 or -errno (-EINVAL for a malformed rule). */
NB_API int nb_cgroup_devices_allow(const char *cgroup_dir, const char *extra);

/* `server cp` (layer.c): path opened with openat2 RESOLVE_IN_ROOT below root_fd, fd or -errno;
 * whether an overlay layer dir is opaque, 1/0 or -errno (opaque.c, also in novabox.node). */
NB_API int nb_open_in_root(int root_fd, const char *path, int oflags);
NB_API int nb_layer_is_opaque(const char *dir);

/* Window size of a pty master. 0 or -errno. */
NB_API int nb_pty_resize(int32_t master_fd, uint16_t rows, uint16_t cols);

/* Remove a `run` container's directory of the usual layout (rundir.c): 0, or -errno when
 * something else is in it (the caller then walks the tree). A missing directory is 0. */
NB_API int nb_rm_run_dir(const char *dir);
/* One of its two independent parts (0: the top level's entries, 1: the work tree); the
 * directory itself is left. nb_rm_run_dir = part 0, part 1, rmdir. */
NB_API int nb_rm_run_dir_part(const char *dir, int part);

/* ---- networking (net.c): rtnetlink, called while the init waits for GO ---- */

struct nb_net_bridge_args {
	const char *name;     /* bridge name (< IFNAMSIZ) */
	uint32_t addr;        /* gateway address on the bridge, network byte order */
	uint32_t prefix_len;  /* 1..30 */
	uint32_t mtu;         /* 0 = the kernel's default */
	uint8_t mac[6];       /* fixed bridge MAC */
	uint8_t pad[2];
};

/* Create the bridge if missing, add its address if missing, bring it up.
 * 1 = created now, 0 = it existed, -errno. */
NB_API int nb_net_bridge(const struct nb_net_bridge_args *a);

struct nb_net_args {
	const char *bridge;   /* the host bridge the host end joins */
	const char *host_if;  /* host end of the veth pair (< IFNAMSIZ); removed first if present */
	const char *alias;    /* ifalias of the host end (owner, for leftover checks), or NULL */
	int32_t pid;          /* a process in the target network namespace (the init) */
	uint32_t addr;        /* eth0's address, network byte order */
	uint32_t gateway;     /* default route via this address; 0 = none */
	uint32_t prefix_len;  /* 1..30 */
	uint32_t mtu;         /* both ends; 0 = the kernel's default */
	uint8_t mac[6];       /* eth0's MAC */
	uint8_t pad[2];
};

enum nb_net_stage {
	NB_NET_STAGE_ARGS = 1, NB_NET_STAGE_BRIDGE = 2, NB_NET_STAGE_NETNS = 3, NB_NET_STAGE_VETH = 4,
	NB_NET_STAGE_SETNS = 5, NB_NET_STAGE_CONFIG = 6
};

/* veth pair with the peer made inside the pid's netns as eth0, up, addressed, default
 * route, lo up. 0 or -errno; *stage = NB_NET_STAGE_* that failed. Nothing is left on failure. */
NB_API int nb_net_attach(const struct nb_net_args *a, int32_t *stage);

/* Remove a network link by name: 0, -ENODEV if there is none, or -errno. */
NB_API int nb_net_link_del(const char *name);

/* ABI version of the loaded library. */
NB_API uint32_t nb_abi_version(void);

#endif
