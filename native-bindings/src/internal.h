/* Declarations shared by the C files; not part of the ABI. */
#ifndef NOVABOX_INTERNAL_H
#define NOVABOX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "novabox.h"

const struct nb_op *nb_plan_ops(const void *plan);
const char *nb_plan_str(const void *plan, uint32_t off);
uint32_t nb_plan_list_len(const void *plan, uint32_t off);
const char *nb_plan_list_item(const void *plan, uint32_t off, uint32_t i);

/*
 * Runs ops[0..n-1] of the plan in the container init. Returns only on failure:
 * *failed_op = index, return value = errno. A successful NB_OP_EXEC never returns.
 * err_fd is kept open (close-on-exec) through the fd sweep before execve.
 * gate_fd >= 0: read one byte 'G' from it before NB_OP_EXEC; anything else (EOF: the CLI
 * gave up) ends the process with status 125 before the command runs.
 */
int nb_run_ops(const void *plan, int err_fd, int gate_fd, int32_t *failed_op);
/* Open the files of the plan's NB_OP_CGROUP_JOIN ops now, for a clone made after setns(2)
 * into a running container's mount namespace, where those host paths do not resolve. */
void nb_preopen_cgroup_joins(const void *plan);
void nb_close_preopened(void);
/* The monitor's sealed memfd copy of the plan's exec_copy binary (-1: none); NB_OP_EXEC
 * with NB_OPF_SEALED executes it with execveat(2), and the fd sweep before execve keeps it. */
extern int nb_exec_copy_fd;
/* userns.c, in the monitor: the init's id maps (0 or errno), then, once the init asks on
 * sock, its idmapped rootfs and the answer (0, or errno with *step: 1 a layer, 2 the
 * overlay, 3 the tmpfs, 4 the answer; -1 when nothing failed or the init never asked). */
int nb_userns_maps(const void *plan, pid_t init);
/* Before the clone: stdio pipes and sockets of host root's go to the range's root (uid,
 * gid on the host), read from the plan's maps or, for an exec, the server's. -1: none. */
void nb_userns_stdio(long uid, long gid);
long nb_userns_plan_base(const void *plan, int which);
long nb_userns_proc_base(pid_t pid, const char *file);
int nb_userns_serve(const void *plan, pid_t init, pid_t ns_pid, int sock, int *step);
pid_t nb_userns_scratch(int *hold);
/* The init's end of the monitor's userns socket (NB_OP_USERNS reads it once); -1: none. */
extern int nb_userns_sock;

const struct nb_cg_step *nb_plan_cg_steps(const void *plan);

/* cgroup.c, in the monitor: run the creation steps (0, or errno with *failed = step
 * index; what was made is removed again), read the OOM kills (-1: unknown), run the
 * removal steps (0, or the first errno with *failed = step index). */
int nb_cg_create(const void *plan, int32_t *failed);
int nb_cg_oom_count(const void *plan);
int nb_cg_remove(const void *plan, int32_t *failed);

/* The default seccomp filter; 0 or -1 with errno. */
int nb_load_seccomp(int system);
/* A filter of the plan's (NB_OP_SECCOMP_PROGRAM): hex, 16 digits an instruction; 0 or -1 with errno. */
int nb_load_seccomp_program(const char *hex, unsigned int flags);
/* Its instructions (struct sock_filter) into out: the count, or -1 if max is too small. */
struct sock_filter;
int nb_seccomp_program(struct sock_filter *out, size_t max, int system);

/* fds the monitor receives from nb_spawn */
#define NB_FD_PLAN 3
#define NB_FD_EVENTS 4
#define NB_FD_GO 5
#define NB_FD_CONSOLE 6 /* only with NB_PLAN_TTY */
#define NB_FD_OPS 7     /* only with NB_PLAN_LATE_OPS: the memfd the ops plan is written to */
#define NB_FD_PRESERVE 8 /* nb_spawn_args.preserve_fds: the caller's fds 3.. from here on */
#define NB_MAX_PRESERVE 200
#define NB_FD_HIGH 256   /* the monitor's error pipe, above every preserved fd (the init's
                            exec moves those to 3.. and must not overwrite it) */
#define NB_OPFAIL_GATE (-3) /* NB_PLAN_DETACH: the init's ops are done, it waits for 'G' */
#define NB_OPFAIL_PLAN (-2) /* the init's "failed op" when the late ops plan is refused */

/*
 * An id range lease, taken the way src/runtime/userns/leases.ts takes one (idmap.c): in
 * `dir`, from files {subuid, subgid, passwd, group}, for kind 'c' or 's' and the owner's
 * id (its first 16 characters are kept). The length of what was written to out
 * ("slot uidBase gidBase start bootid nonce\n", then "slot target\n" per link read), or
 * NB_IDMAP_ASK_JS: nothing made, the JavaScript decides (first use, bad input, none free).
 */
#define NB_IDMAP_ASK_JS 0
int nb_idmap_take(const char *dir, const char *const files[4], char kind, const char *owner, char *out, size_t out_len);

#endif
