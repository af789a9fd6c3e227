/*
 * build/novabox.node: the start path's few calls into libnovabox, as a Node-API module.
 *
 * koffi stays the FFI for the library as a whole (src/sys/native.ts). But koffi's own
 * initialisation costs about 1.5 ms of CPU in every process that loads it, and binding
 * each prototype a little more: a fifth of what `novabox run` spends above Node's own
 * start. The calls every container start makes (spawn the monitor, wait, pidfd, the
 * console, exit) are therefore also exported here, wrapping the same C functions
 * (spawn.c, devices.c, rundir.c) compiled into this module; loading it costs ~0.2 ms.
 * Four exist only here: the container directory's removal as async work, signal
 * forwarding from a C handler (forwardSignals), which koffi cannot offer, `run`'s id
 * range lease (idmapTake, idmap.c; without it the JavaScript takes it, ~1 ms slower), and
 * bin/launcher.cjs's reading of a bundle and its code cache (mapScript, mapFile). The
 * bridge network's calls (net.c: netBridge, netAttach, netLinkDel) are here too, so that
 * a start on the bridge never loads koffi either (~1.2-1.7 ms in the trace). Every
 * function returns what its C counterpart returns (a value, or -errno): no errno state.
 *
 * Node-API is a stable C ABI: the few declarations below are the ones from Node's
 * js_native_api.h that this file uses (types are opaque pointers, napi_status an int),
 * so the module builds with the system C compiler and no Node headers (nothing is
 * downloaded). The napi_* symbols resolve against the node executable at dlopen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok = 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
enum { napi_int32_array = 5 }; /* napi_typedarray_type */

napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
napi_status napi_get_value_string_utf8(napi_env, napi_value, char *, size_t, size_t *);
napi_status napi_get_typedarray_info(napi_env, napi_value, int *, size_t *, void **, napi_value *, size_t *);
napi_status napi_create_int32(napi_env, int32_t, napi_value *);
napi_status napi_throw_type_error(napi_env, const char *, const char *);
/* async work (rmRunDir): run in libuv's thread pool, settle a promise on the main thread */
typedef struct napi_async_work__ *napi_async_work;
typedef struct napi_deferred__ *napi_deferred;
typedef void (*napi_async_execute_callback)(napi_env env, void *data);
typedef void (*napi_async_complete_callback)(napi_env env, napi_status status, void *data);
napi_status napi_create_async_work(napi_env, napi_value, napi_value, napi_async_execute_callback,
				   napi_async_complete_callback, void *, napi_async_work *);
napi_status napi_queue_async_work(napi_env, napi_async_work);
napi_status napi_delete_async_work(napi_env, napi_async_work);
napi_status napi_create_promise(napi_env, napi_deferred *, napi_value *);
napi_status napi_resolve_deferred(napi_env, napi_deferred, napi_value);
napi_status napi_create_string_latin1(napi_env, const char *, size_t, napi_value *);
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);
napi_status napi_create_external_arraybuffer(napi_env, void *, size_t, napi_finalize, void *, napi_value *);
/* Node 20.4 and later (experimental there, stable in 22): weak, so an older Node loads this module and copies */
napi_status node_api_create_external_string_latin1(napi_env, char *, size_t, napi_finalize, void *, napi_value *, bool *)
	__attribute__((weak));

#define MAX_ARGS 10

struct call {
	napi_env env;
	size_t argc;
	napi_value argv[MAX_ARGS];
	int bad; /* an argument had the wrong type: a TypeError is pending */
};

static void call_init(struct call *c, napi_env env, napi_callback_info info, size_t want)
{
	c->env = env;
	c->argc = MAX_ARGS;
	c->bad = napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL) != 0 || c->argc < want;
	if (c->bad)
		napi_throw_type_error(env, NULL, "novabox.node: wrong number of arguments");
}

static int32_t arg_int(struct call *c, size_t i)
{
	int32_t v = 0;

	if (!c->bad && napi_get_value_int32(c->env, c->argv[i], &v) != 0) {
		c->bad = 1;
		napi_throw_type_error(c->env, NULL, "novabox.node: expected a number");
	}
	return v;
}

/* A string argument copied into buf (PATH_MAX bytes). */
static const char *arg_str(struct call *c, size_t i, char *buf)
{
	size_t len = 0;

	if (c->bad)
		return "";
	if (napi_get_value_string_utf8(c->env, c->argv[i], buf, PATH_MAX, &len) != 0 || len >= PATH_MAX - 1) {
		c->bad = 1;
		napi_throw_type_error(c->env, NULL, "novabox.node: expected a string shorter than PATH_MAX");
		return "";
	}
	return buf;
}

/* The bytes of a typed array or Buffer argument; *len in bytes. */
static void *arg_bytes(struct call *c, size_t i, size_t *len)
{
	int type = 0;
	size_t n = 0, off = 0;
	void *data = NULL;
	napi_value ab;

	if (!c->bad && napi_get_typedarray_info(c->env, c->argv[i], &type, &n, &data, &ab, &off) != 0) {
		c->bad = 1;
		napi_throw_type_error(c->env, NULL, "novabox.node: expected a typed array");
		return NULL;
	}
	/* element size: Uint8Array/Buffer 1, Int32Array 4 (the only two used) */
	*len = n * (type == napi_int32_array ? 4 : 1);
	return data;
}

static napi_value ret(struct call *c, int32_t v)
{
	napi_value r = NULL;

	if (!c->bad)
		napi_create_int32(c->env, v, &r);
	return r;
}

/* abi() -> NB_ABI_VERSION */
static napi_value js_abi(napi_env env, napi_callback_info info)
{
	struct call c;

	call_init(&c, env, info, 0);
	return ret(&c, (int32_t)NB_ABI_VERSION);
}

/* spawn(plan, monitorPath, tag, stdin, stdout, stderr, tty, preserveFds, out Int32Array(7)) -> 0 | -errno;
 * out = monitor_pid, init_pid, events_fd, go_fd, console_fd, stage, ops_fd (struct nb_spawn_result) */
static napi_value js_spawn(napi_env env, napi_callback_info info)
{
	char path[PATH_MAX], tag[PATH_MAX];
	struct nb_spawn_args a;
	struct nb_spawn_result r;
	size_t plan_len = 0, out_len = 0;
	const void *plan;
	int32_t *out;
	struct call c;
	int rc, i;

	call_init(&c, env, info, 9);
	plan = arg_bytes(&c, 0, &plan_len);
	a.monitor_path = arg_str(&c, 1, path);
	a.monitor_tag = arg_str(&c, 2, tag);
	for (i = 0; i < 3; i++)
		a.stdio[i] = arg_int(&c, 3 + (size_t)i);
	a.tty = arg_int(&c, 6);
	a.preserve_fds = arg_int(&c, 7);
	out = arg_bytes(&c, 8, &out_len);
	if (c.bad)
		return NULL;
	if (out_len < sizeof(r) || plan_len > UINT32_MAX) {
		napi_throw_type_error(env, NULL, "novabox.node: spawn needs an Int32Array(7) for its result");
		return NULL;
	}
	rc = nb_spawn(plan, (uint32_t)plan_len, &a, &r);
	memcpy(out, &r, sizeof(r));
	return ret(&c, rc);
}

/* waitpid(pid, options, status Int32Array(1)) -> pid | 0 | -errno */
static napi_value js_waitpid(napi_env env, napi_callback_info info)
{
	size_t len = 0;
	int32_t *status;
	int st = 0;
	pid_t r;
	struct call c;

	call_init(&c, env, info, 3);
	pid_t pid = arg_int(&c, 0);
	int options = arg_int(&c, 1);
	status = arg_bytes(&c, 2, &len);
	if (c.bad)
		return NULL;
	if (len < 4) {
		napi_throw_type_error(env, NULL, "novabox.node: waitpid needs an Int32Array(1)");
		return NULL;
	}
	r = waitpid(pid, &st, options);
	if (r < 0)
		return ret(&c, -errno);
	status[0] = st;
	return ret(&c, r);
}

/* pidfdOpen(pid) -> fd | -errno (close-on-exec, as every pidfd) */
static napi_value js_pidfd_open(napi_env env, napi_callback_info info)
{
	struct call c;
	long fd;

	call_init(&c, env, info, 1);
	pid_t pid = arg_int(&c, 0);
	if (c.bad)
		return NULL;
	fd = syscall(SYS_pidfd_open, pid, 0);
	return ret(&c, fd < 0 ? -errno : (int32_t)fd);
}

/* pidfdSignal(pidfd, signal) -> 0 | -errno */
static napi_value js_pidfd_signal(napi_env env, napi_callback_info info)
{
	struct call c;

	call_init(&c, env, info, 2);
	int fd = arg_int(&c, 0), sig = arg_int(&c, 1);
	if (c.bad)
		return NULL;
	return ret(&c, syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 ? -errno : 0);
}

/* recvFd(sock) -> fd | -errno */
static napi_value js_recv_fd(napi_env env, napi_callback_info info)
{
	struct call c;

	call_init(&c, env, info, 1);
	int sock = arg_int(&c, 0);
	return c.bad ? NULL : ret(&c, nb_recv_fd(sock));
}

/* sendFd(socketPath, fd, name) -> 0 | -errno */
static napi_value js_send_fd(napi_env env, napi_callback_info info)
{
	char path[PATH_MAX], name[PATH_MAX];
	struct call c;

	call_init(&c, env, info, 3);
	const char *p = arg_str(&c, 0, path);
	int fd = arg_int(&c, 1);
	const char *n = arg_str(&c, 2, name);
	return c.bad ? NULL : ret(&c, nb_send_fd(p, fd, n));
}

/* ptyResize(fd, rows, cols) -> 0 | -errno */
static napi_value js_pty_resize(napi_env env, napi_callback_info info)
{
	struct call c;

	call_init(&c, env, info, 3);
	int fd = arg_int(&c, 0), rows = arg_int(&c, 1), cols = arg_int(&c, 2);
	if (c.bad)
		return NULL;
	if (rows < 0 || rows > UINT16_MAX || cols < 0 || cols > UINT16_MAX)
		return ret(&c, -EINVAL);
	return ret(&c, nb_pty_resize(fd, (uint16_t)rows, (uint16_t)cols));
}

/* f(path) -> 0 | -errno, for the calls that take one path */
static napi_value path_call(napi_env env, napi_callback_info info, int (*fn)(const char *))
{
	char path[PATH_MAX];
	struct call c;

	call_init(&c, env, info, 1);
	const char *p = arg_str(&c, 0, path);
	return c.bad ? NULL : ret(&c, fn(p));
}

/* cgroupDevices(dir, extra) -> 0 | -errno: extra, devices.allow lines beyond the fixed list ("" none) */
static napi_value js_cgroup_devices(napi_env env, napi_callback_info info)
{
	char dir[PATH_MAX], extra[PATH_MAX];
	struct call c;

	call_init(&c, env, info, 2);
	arg_str(&c, 0, dir);
	arg_str(&c, 1, extra);
	if (c.bad)
		return NULL;
	return ret(&c, nb_cgroup_devices_allow(dir, extra));
}

/* A MAC address argument: a typed array of 6 bytes. */
static void arg_mac(struct call *c, size_t i, uint8_t mac[6])
{
	size_t n = 0;
	const uint8_t *b = arg_bytes(c, i, &n);

	if (c->bad)
		return;
	if (n != 6) {
		c->bad = 1;
		napi_throw_type_error(c->env, NULL, "novabox.node: expected 6 bytes of a MAC address");
		return;
	}
	memcpy(mac, b, 6);
}

/* netBridge(name, addr, prefixLen, mtu, mac) -> 1 (made now) | 0 | -errno (net.c); addr in
 * network byte order, as a 32-bit number (its bits: an int32 argument) */
static napi_value js_net_bridge(napi_env env, napi_callback_info info)
{
	char name[PATH_MAX];
	struct nb_net_bridge_args a;
	struct call c;

	memset(&a, 0, sizeof(a));
	call_init(&c, env, info, 5);
	a.name = arg_str(&c, 0, name);
	a.addr = (uint32_t)arg_int(&c, 1);
	a.prefix_len = (uint32_t)arg_int(&c, 2);
	a.mtu = (uint32_t)arg_int(&c, 3);
	arg_mac(&c, 4, a.mac);
	return c.bad ? NULL : ret(&c, nb_net_bridge(&a));
}

/* netAttach(bridge, hostIf, alias ("" none), pid, addr, gateway, prefixLen, mtu, mac, stage)
 * -> 0 | -errno (net.c); stage: an Int32Array whose [0] names the failing step */
static napi_value js_net_attach(napi_env env, napi_callback_info info)
{
	char bridge[PATH_MAX], host_if[PATH_MAX], alias[PATH_MAX];
	struct nb_net_args a;
	struct call c;
	size_t n = 0;
	int32_t *stage;

	memset(&a, 0, sizeof(a));
	call_init(&c, env, info, 10);
	a.bridge = arg_str(&c, 0, bridge);
	a.host_if = arg_str(&c, 1, host_if);
	a.alias = arg_str(&c, 2, alias);
	a.pid = arg_int(&c, 3);
	a.addr = (uint32_t)arg_int(&c, 4);
	a.gateway = (uint32_t)arg_int(&c, 5);
	a.prefix_len = (uint32_t)arg_int(&c, 6);
	a.mtu = (uint32_t)arg_int(&c, 7);
	arg_mac(&c, 8, a.mac);
	stage = arg_bytes(&c, 9, &n);
	if (c.bad)
		return NULL;
	if (!a.alias[0])
		a.alias = NULL;
	if (n < sizeof(*stage)) {
		napi_throw_type_error(env, NULL, "novabox.node: expected an Int32Array for the stage");
		return NULL;
	}
	return ret(&c, nb_net_attach(&a, stage));
}

/* netLinkDel(name) -> 0 | -ENODEV | -errno */
static napi_value js_net_link_del(napi_env env, napi_callback_info info)
{
	return path_call(env, info, nb_net_link_del);
}

/* rmRunDir(dir) -> Promise<0 | -errno>: nb_rm_run_dir's two parts as two jobs in the
 * thread pool side by side, the directory removed by the one that ends last; one return
 * to the event loop per part (the fs.rmdir/unlink chain costs one per step) */
struct rm_job {
	napi_async_work work[2];
	napi_deferred deferred;
	atomic_int running; /* parts still in the pool */
	int completed;      /* parts completed on the main thread */
	int result[2];
	char dir[PATH_MAX];
};

struct rm_part {
	struct rm_job *job;
	int part;
};

static void rm_execute(napi_env env, void *data)
{
	struct rm_job *j = ((struct rm_part *)data)->job;
	int part = ((struct rm_part *)data)->part;

	j->result[part] = nb_rm_run_dir_part(j->dir, part);
	/* the last part out removes the directory: the other's result is visible here (seq_cst) */
	if (atomic_fetch_sub(&j->running, 1) == 1 && j->result[0] == 0 && j->result[1] == 0 &&
	    rmdir(j->dir) < 0 && errno != ENOENT)
		j->result[part] = -errno;
}

static void rm_complete(napi_env env, napi_status status, void *data)
{
	struct rm_job *j = ((struct rm_part *)data)->job;
	int part = ((struct rm_part *)data)->part;
	napi_value v;

	if (status != 0)
		j->result[part] = -ECANCELED;
	free(data);
	if (++j->completed < 2)
		return;
	if (napi_create_int32(env, j->result[0] ? j->result[0] : j->result[1], &v) == 0)
		napi_resolve_deferred(env, j->deferred, v);
	napi_delete_async_work(env, j->work[0]);
	napi_delete_async_work(env, j->work[1]);
	free(j);
}

static napi_value js_rm_run_dir(napi_env env, napi_callback_info info)
{
	struct rm_job *j = calloc(1, sizeof(*j));
	struct rm_part *p[2] = { malloc(sizeof(struct rm_part)), malloc(sizeof(struct rm_part)) };
	napi_value promise = NULL, name;
	struct call c;
	int i;

	call_init(&c, env, info, 1);
	if (!j || !p[0] || !p[1]) {
		if (!c.bad)
			napi_throw_type_error(env, NULL, "novabox.node: out of memory");
		goto fail;
	}
	arg_str(&c, 0, j->dir);
	atomic_init(&j->running, 2);
	if (c.bad || napi_create_promise(env, &j->deferred, &promise) != 0 ||
	    napi_create_string_latin1(env, "novabox.rmRunDir", (size_t)-1, &name) != 0)
		goto fail; /* a pending promise stays pending: only when Node-API itself fails */
	for (i = 0; i < 2; i++) {
		p[i]->job = j;
		p[i]->part = i;
		if (napi_create_async_work(env, NULL, name, rm_execute, rm_complete, p[i], &j->work[i]) != 0) {
			if (i == 1)
				napi_delete_async_work(env, j->work[0]);
			goto fail;
		}
	}
	/* both created: queueing is all that is left (it fails only on a bad env) */
	napi_queue_async_work(env, j->work[0]);
	napi_queue_async_work(env, j->work[1]);
	return promise;
fail:
	free(p[0]);
	free(p[1]);
	free(j);
	return NULL;
}

/*
 * forwardSignals(pidfd, signals Int32Array) -> 0 | -errno: until forwardSignals(-1, same
 * signals), each of these signals is sent on to the pidfd's process by a C handler
 * (pidfd_send_signal is async-signal-safe), so the main thread may block in a read of
 * the monitor's events without the event loop: no thread pool on the start path of a
 * `run` without a terminal. SA_RESTART: the blocked read resumes after the handler.
 * pidfd -1 puts back the dispositions saved at the install.
 */
static volatile sig_atomic_t fwd_pidfd = -1;
static struct sigaction fwd_saved[NSIG];

static void fwd_handler(int sig)
{
	int saved = errno;

	if (fwd_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, (int)fwd_pidfd, sig, NULL, 0);
	errno = saved;
}

static napi_value js_forward_signals(napi_env env, napi_callback_info info)
{
	struct sigaction sa;
	size_t len = 0, i;
	int32_t *sigs;
	struct call c;
	int err = 0;

	call_init(&c, env, info, 2);
	int pidfd = arg_int(&c, 0);
	sigs = arg_bytes(&c, 1, &len);
	if (c.bad)
		return NULL;
	len /= sizeof(int32_t);
	for (i = 0; i < len; i++) {
		if (sigs[i] <= 0 || sigs[i] >= NSIG || sigs[i] == SIGKILL || sigs[i] == SIGSTOP)
			return ret(&c, -EINVAL);
	}
	if (pidfd < 0) {
		for (i = 0; i < len; i++)
			sigaction(sigs[i], &fwd_saved[sigs[i]], NULL);
		fwd_pidfd = -1;
		return ret(&c, 0);
	}
	fwd_pidfd = pidfd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fwd_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < len; i++) {
		if (sigaction(sigs[i], &sa, &fwd_saved[sigs[i]]) < 0) {
			err = -errno;
			break;
		}
	}
	if (err) { /* put back what was installed before the one refused */
		while (i-- > 0)
			sigaction(sigs[i], &fwd_saved[sigs[i]], NULL);
		fwd_pidfd = -1;
	}
	return ret(&c, err);
}

/* rmRunDirSync(dir) -> 0 | -errno: rmRunDir's work on this thread (nb_rm_run_dir) */
static napi_value js_rm_run_dir_sync(napi_env env, napi_callback_info info)
{
	return path_call(env, info, nb_rm_run_dir);
}

/* layerIsOpaque(dir) -> 1 | 0 | -errno (opaque.c) */
static napi_value js_layer_is_opaque(napi_env env, napi_callback_info info)
{
	return path_call(env, info, nb_layer_is_opaque);
}

/*
 * idmapTake(dir, subuid, subgid, passwd, group, kindAndOwner) -> string | 0: an id range
 * lease (idmap.c); 0: nothing made, src/runtime/userns/leases.ts takes it instead.
 * kindAndOwner: 'c' or 's', then the owner's id.
 */
static napi_value js_idmap_take(napi_env env, napi_callback_info info)
{
	static char out[(1u << 18) + 256];
	char dir[PATH_MAX], f[4][PATH_MAX], owner[PATH_MAX];
	const char *files[4] = { f[0], f[1], f[2], f[3] };
	struct call c;
	napi_value r = NULL;
	int n;

	call_init(&c, env, info, 6);
	arg_str(&c, 0, dir);
	for (int i = 0; i < 4; i++)
		arg_str(&c, (size_t)i + 1, f[i]);
	arg_str(&c, 5, owner);
	if (c.bad)
		return NULL;
	if ((owner[0] != 'c' && owner[0] != 's') || !owner[1] || strchr(owner, ' '))
		return ret(&c, -EINVAL);
	n = nb_idmap_take(dir, files, owner[0], owner + 1, out, sizeof(out));
	if (n <= 0)
		return ret(&c, n);
	napi_create_string_latin1(env, out, (size_t)n, &r);
	return r;
}

/* a finalizer: the mapping's length is its hint */
static void unmap(napi_env env, void *data, void *hint)
{
	(void)env;
	munmap(data, (size_t)(uintptr_t)hint);
}

/*
 * A regular file mapped read-only and private; *len its size. 0 or -errno (-ENODATA: it
 * is empty). The launcher's files are replaced, never rewritten in place (scripts/build.mjs
 * removes dist/ first; a code cache is written to a temporary name and renamed), so a
 * mapping keeps the bytes it was made with.
 */
static int map_file(struct call *c, char **out, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	void *p;
	int fd, err;

	arg_str(c, 0, path);
	if (c->bad)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return err;
	}
	if (st.st_size == 0) {
		close(fd);
		return -ENODATA;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	err = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (err)
		return err;
	*out = p;
	*len = (size_t)st.st_size;
	return 0;
}

/*
 * mapScript(path) -> string | -errno: an ASCII file as a V8 string over its mapping,
 * outside the JavaScript heap (bin/launcher.cjs: a bundle that scripts/build.mjs wrote in a
 * function expression and checked to be ASCII, for vm.Script with its code cache).
 * readFileSync and Module.wrap made two copies of a bundle on the young heap (~0.8 MB for
 * a 0.4 MB bundle), decoding its UTF-8 and flattening the concatenation; V8 reads only the
 * pages it compiles from.
 */
static napi_value js_map_script(napi_env env, napi_callback_info info)
{
	napi_value r = NULL;
	bool copied = false;
	struct call c;
	size_t len = 0;
	char *p;
	int rc;

	call_init(&c, env, info, 1);
	rc = map_file(&c, &p, &len);
	if (c.bad)
		return NULL;
	if (rc < 0)
		return ret(&c, rc);
	if (!node_api_create_external_string_latin1) {
		rc = napi_create_string_latin1(env, p, len, &r);
		munmap(p, len);
		return rc == 0 ? r : ret(&c, -ENOMEM);
	}
	/* copied: Node made a string of its own and has unmapped the file already */
	if (node_api_create_external_string_latin1(env, p, len, unmap, (void *)(uintptr_t)len, &r, &copied) != 0) {
		if (!copied)
			munmap(p, len);
		return ret(&c, -ENOMEM);
	}
	return r;
}

/* mapFile(path) -> ArrayBuffer | -errno: a file's bytes over its mapping (a code cache) */
static napi_value js_map_file(napi_env env, napi_callback_info info)
{
	napi_value r = NULL;
	struct call c;
	size_t len = 0;
	char *p;
	int rc;

	call_init(&c, env, info, 1);
	rc = map_file(&c, &p, &len);
	if (c.bad)
		return NULL;
	if (rc < 0)
		return ret(&c, rc);
	if (napi_create_external_arraybuffer(env, p, len, unmap, (void *)(uintptr_t)len, &r) != 0) {
		munmap(p, len);
		return ret(&c, -ENOMEM);
	}
	return r;
}

/* exit(code): _exit(2), no atexit handlers (src/util/exit.ts says when that is right) */
static napi_value js_exit(napi_env env, napi_callback_info info)
{
	struct call c;

	call_init(&c, env, info, 1);
	int code = arg_int(&c, 0);
	if (c.bad)
		return NULL;
	_exit(code & 0xff);
}

NB_API int32_t node_api_module_get_api_version_v1(void)
{
	return 8;
}

NB_API napi_value napi_register_module_v1(napi_env env, napi_value exports)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "abi", js_abi },
		{ "spawn", js_spawn },
		{ "waitpid", js_waitpid },
		{ "pidfdOpen", js_pidfd_open },
		{ "pidfdSignal", js_pidfd_signal },
		{ "recvFd", js_recv_fd },
		{ "sendFd", js_send_fd },
		{ "ptyResize", js_pty_resize },
		{ "cgroupDevices", js_cgroup_devices },
		{ "netBridge", js_net_bridge },
		{ "netAttach", js_net_attach },
		{ "netLinkDel", js_net_link_del },
		{ "rmRunDir", js_rm_run_dir },
		{ "rmRunDirSync", js_rm_run_dir_sync },
		{ "forwardSignals", js_forward_signals },
		{ "layerIsOpaque", js_layer_is_opaque },
		{ "exit", js_exit },
		{ "idmapTake", js_idmap_take },
		{ "mapScript", js_map_script },
		{ "mapFile", js_map_file },
	};
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;

		if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].fn, NULL, &f) != 0 ||
		    napi_set_named_property(env, exports, fns[i].name, f) != 0)
			return NULL;
	}
	return exports;
}
