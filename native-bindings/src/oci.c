/*
 * novabox-oci: the executable an engine (containerd's shim, dockerd, podman) runs for
 * every verb of a container. The light verbs' usual case is done here, in C, from the
 * state directory the JS front end writes (docs/oci-state.md): `start` (the gate write),
 * `state`, `kill ID [SIGNAL]` and `delete [--force]` of a stopped container. Everything
 * else, and every case this file does not know to be the usual one (an error to report,
 * hooks to run, a container to kill before its deletion, an option it does not parse), is
 * handed whole to the JS front end (bin/novabox-oci-js beside this executable, which
 * src/oci/main.ts implements): it decides again from the same files, so its rules and its
 * messages stay the reference. This file only ever does what the JS would have done.
 *
 * Only two errors are this file's own, both after `start` made its `started` marker
 * (a second start must then fail, not run again): the same sentences as startContainer's.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OCI_VERSION "1.0.2"
#define GO_FD 5

static char **g_argv;
static const char *g_root = "/run/novabox-oci";
static const char *g_log;
static int g_json;

/* The JS front end, with the same command line: it takes over from here. */
__attribute__((noreturn)) static void to_js(void) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
  if (n > 0) {
    self[n] = 0;
    char *slash = strrchr(self, '/');
    strcpy(slash + 1, "novabox-oci-js");
    execv(self, g_argv);
  }
  fprintf(stderr, "novabox-oci: cannot run its JS front end (novabox-oci-js beside %s): %s\n", n > 0 ? self : "it",
          strerror(errno));
  exit(1);
}

/* ---- output ---------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    case '\b': fputs("\\b", f); break;
    case '\f': fputs("\\f", f); break;
    default:
      if (*p < 0x20) fprintf(f, "\\u%04x", *p);
      else fputc(*p, f);
    }
  }
  fputc('"', f);
}

/* One sentence on stderr and in --log (main.ts's logLine), exit status 1. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (g_log) {
    FILE *f = fopen(g_log, "a");
    if (f) {
      struct timespec ts;
      struct tm tm;
      char when[64];
      clock_gettime(CLOCK_REALTIME, &ts);
      gmtime_r(&ts.tv_sec, &tm);
      size_t k = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
      snprintf(when + k, sizeof when - k, ".%03ldZ", ts.tv_nsec / 1000000);
      if (g_json) {
        fputs("{\"level\":\"error\",\"msg\":", f);
        json_string(f, msg);
        fprintf(f, ",\"time\":\"%s\"}\n", when);
      } else {
        fprintf(f, "time=\"%s\" level=error msg=", when);
        json_string(f, msg);
        fputc('\n', f);
      }
      fclose(f);
    }
  }
  fprintf(stderr, "novabox-oci: %s\n", msg);
  exit(1);
}

/* ---- state.json: compact JSON as JSON.stringify writes it ------------------------- */

static const char *ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  return p;
}

/* The end of the value at p, or NULL when it is not one. */
static const char *skip(const char *p) {
  p = ws(p);
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++)
      if (*p == '\\' && !*++p) return NULL;
    return *p ? p + 1 : NULL;
  }
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (!(p = skip(p))) return NULL;
        p = ws(p);
        if (*p++ != ':') return NULL;
      }
      if (!(p = skip(p))) return NULL;
      p = ws(p);
      if (*p == ',') p++;
      else if (*p == close) return p + 1;
      else return NULL;
    }
  }
  const char *s = p;
  while (*p && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.')) p++;
  return p > s ? p : NULL;
}

/* The value of `key` in the object at obj (its span in *end), or NULL. */
static const char *member(const char *obj, const char *key, const char **end) {
  const char *p = ws(obj);
  if (*p != '{') return NULL;
  p = ws(p + 1);
  size_t klen = strlen(key);
  while (*p == '"') {
    const char *kend = skip(p);
    if (!kend) return NULL;
    int match = (size_t)(kend - p) == klen + 2 && !memcmp(p + 1, key, klen);
    p = ws(kend);
    if (*p++ != ':') return NULL;
    p = ws(p);
    const char *vend = skip(p);
    if (!vend) return NULL;
    if (match) {
      *end = vend;
      return p;
    }
    p = ws(vend);
    if (*p != ',') return NULL;
    p = ws(p + 1);
  }
  return NULL;
}

/* A JSON string token's text (malloc'd), or NULL when it is not a string. */
static char *decode(const char *p, const char *end) {
  if (!p || *p != '"') return NULL;
  char *out = malloc(end - p), *o = out;
  for (p++; p < end - 1; p++) {
    if (*p != '\\') {
      *o++ = *p;
      continue;
    }
    switch (*++p) {
    case 'n': *o++ = '\n'; break;
    case 't': *o++ = '\t'; break;
    case 'r': *o++ = '\r'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'u': {
      unsigned c;
      if (sscanf(p + 1, "%4x", &c) != 1 || c == 0 || c >= 0xd800) {
        free(out);
        return NULL; /* nothing novabox writes: the JS reads it */
      }
      p += 4;
      if (c < 0x80) *o++ = c;
      else if (c < 0x800) *o++ = 0xc0 | c >> 6, *o++ = 0x80 | (c & 0x3f);
      else *o++ = 0xe0 | c >> 12, *o++ = 0x80 | ((c >> 6) & 0x3f), *o++ = 0x80 | (c & 0x3f);
      break;
    }
    default: *o++ = *p;
    }
  }
  *o = 0;
  return out;
}

struct record {
  const char *text;
  /* raw JSON tokens, as written (JSON.stringify's own escaping: printed again as they are) */
  const char *bundle, *bundle_end, *rootfs, *rootfs_end, *created, *created_end, *ann, *ann_end;
  long long pid, pid_start, creator, creator_start;
  char *gate;
  int has_poststart, has_poststop;
  /* hostMountsBefore recorded: a container without a mount namespace, whose mounts the JS undoes */
  int host_mounts;
  /* cgroupDirs, cgroupParents: NULL-terminated, or NULL when not recorded */
  char **dirs, **parents;
};

static long long number(const char *obj, const char *key, int *ok) {
  const char *end, *v = member(obj, key, &end);
  if (!v || !(isdigit((unsigned char)*v))) {
    *ok = 0;
    return 0;
  }
  return strtoll(v, NULL, 10);
}

static char **strings(const char *obj, const char *key) {
  const char *end, *v = member(obj, key, &end);
  if (!v || *v != '[') return NULL;
  size_t n = 0, cap = 8;
  char **out = calloc(cap + 1, sizeof *out);
  const char *p = ws(v + 1);
  while (*p == '"') {
    const char *e = skip(p);
    char *s = e ? decode(p, e) : NULL;
    if (!s) return NULL;
    if (n == cap) out = realloc(out, ((cap *= 2) + 1) * sizeof *out);
    out[n++] = s;
    out[n] = NULL;
    p = ws(e);
    if (*p == ',') p = ws(p + 1);
  }
  return *p == ']' ? out : NULL;
}

static int nonempty_list(const char *obj, const char *key) {
  const char *end, *v = member(obj, key, &end);
  return v && !(*v == '[' && *ws(v + 1) == ']');
}

static int read_record(const char *dir, struct record *r) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/state.json", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t cap = 16384, n = 0;
  char *buf = malloc(cap);
  for (ssize_t k; (k = read(fd, buf + n, cap - n - 1)) != 0;) {
    if (k < 0) {
      close(fd);
      return -1;
    }
    n += k;
    if (n == cap - 1) buf = realloc(buf, cap *= 2);
  }
  close(fd);
  buf[n] = 0;
  memset(r, 0, sizeof *r);
  r->text = buf;
  int ok = 1;
  r->pid = number(buf, "pid", &ok);
  r->pid_start = number(buf, "pidStart", &ok);
  r->creator = number(buf, "creator", &ok);
  r->creator_start = number(buf, "creatorStart", &ok);
  r->bundle = member(buf, "bundle", &r->bundle_end);
  r->rootfs = member(buf, "rootfs", &r->rootfs_end);
  r->created = member(buf, "created", &r->created_end);
  r->ann = member(buf, "annotations", &r->ann_end);
  const char *gend, *g = member(buf, "gate", &gend);
  r->gate = decode(g, gend);
  const char *hend, *hooks = member(buf, "hooks", &hend);
  r->has_poststart = hooks && nonempty_list(hooks, "poststart");
  r->has_poststop = hooks && nonempty_list(hooks, "poststop");
  const char *mend;
  r->host_mounts = member(buf, "hostMountsBefore", &mend) != NULL;
  r->dirs = strings(buf, "cgroupDirs");
  r->parents = strings(buf, "cgroupParents");
  if (!ok || !r->bundle || *r->bundle != '"' || !r->rootfs || *r->rootfs != '"' || !r->created || *r->created != '"' ||
      !r->ann || *r->ann != '{' || !r->gate)
    return -1;
  return 0;
}

/* ---- processes ------------------------------------------------------------------- */

/* /proc/<pid>/stat field 22, or -1 when gone or a zombie (src/runtime/proc.ts readProcStart). */
static long long proc_start(long long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p || !p[1] || !p[2]) return -1;
  p += 2;
  if (*p == 'Z' || *p == 'X') return -1;
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  return strtoll(p, NULL, 10);
}

static int alive(long long pid, long long start) { return pid > 0 && proc_start(pid) == start; }

enum status { CREATING, CREATED, RUNNING, PAUSED, STOPPED };
static const char *const STATUS[] = {"creating", "created", "running", "paused", "stopped"};

/* container.ts statusOf */
static enum status status_of(const char *dir, const struct record *r) {
  char path[PATH_MAX + 64];
  if (r->pid == 0) return r->creator > 0 && alive(r->creator, r->creator_start) ? CREATING : STOPPED;
  if (!alive(r->pid, r->pid_start)) return STOPPED;
  snprintf(path, sizeof path, "%s/started", dir);
  if (access(path, F_OK) != 0) return CREATED;
  snprintf(path, sizeof path, "%s/paused", dir);
  return access(path, F_OK) == 0 ? PAUSED : RUNNING;
}

/* ---- the verbs ------------------------------------------------------------------- */

/* JSON.stringify(value, null, 2) of compact JSON, nested `depth` levels deep. */
static void pretty(const char *p, const char *end, int depth) {
  while (p < end) {
    char c = *p;
    if (c == '"') {
      const char *e = skip(p);
      fwrite(p, 1, e - p, stdout);
      p = e;
      continue;
    }
    if (c == '{' || c == '[') {
      if (p[1] == (c == '{' ? '}' : ']')) {
        fputc(c, stdout), fputc(p[1], stdout);
        p += 2;
        continue;
      }
      printf("%c\n%*s", c, 2 * ++depth, "");
    } else if (c == '}' || c == ']') {
      printf("\n%*s%c", 2 * --depth, "", c);
    } else if (c == ',') {
      printf(",\n%*s", 2 * depth, "");
    } else if (c == ':') {
      fputs(": ", stdout);
    } else {
      fputc(c, stdout);
    }
    p++;
  }
}

static void tok(const char *name, const char *p, const char *end) {
  printf(",\n  \"%s\": ", name);
  fwrite(p, 1, end - p, stdout);
}

/* main.ts `state` (ociState) */
static int do_state(const char *id, const char *dir, struct record *r) {
  enum status s = status_of(dir, r);
  printf("{\n  \"ociVersion\": \"" OCI_VERSION "\",\n  \"id\": \"%s\",\n  \"status\": \"%s\",\n  \"pid\": %lld", id, STATUS[s],
         s == STOPPED ? 0 : r->pid);
  tok("bundle", r->bundle, r->bundle_end);
  tok("rootfs", r->rootfs, r->rootfs_end);
  tok("created", r->created, r->created_end);
  fputs(",\n  \"owner\": \"\"", stdout);
  if (r->ann[1] != '}') {
    fputs(",\n  \"annotations\": ", stdout);
    pretty(r->ann, r->ann_end, 1);
  }
  fputs("\n}\n", stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* startContainer, without poststart hooks */
static int do_start(const char *id, const char *dir, struct record *r) {
  char path[PATH_MAX + 64], link[PATH_MAX];
  if (r->has_poststart || status_of(dir, r) != CREATED) to_js();
  char fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/%lld/fd/%d", r->pid, GO_FD);
  ssize_t n = readlink(fdpath, link, sizeof link - 1);
  if (n < 0 || (link[n] = 0, strcmp(link, r->gate) != 0)) to_js();
  snprintf(path, sizeof path, "%s/started", dir);
  int marker = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (marker < 0) to_js();
  close(marker);
  /* from here on the start is this process's: the JS must not make it again */
  n = readlink(fdpath, link, sizeof link - 1);
  if (n < 0) fail("container \"%s\" exited before it was started", id);
  link[n] = 0;
  if (strcmp(link, r->gate) != 0) fail("container \"%s\" is not waiting to be started", id);
  int fd = open(fdpath, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("container \"%s\" exited before it was started", id);
  struct stat st;
  if (fstat(fd, &st) != 0) fail("container \"%s\" exited before it was started", id);
  if (!S_ISFIFO(st.st_mode) || !alive(r->pid, r->pid_start)) fail("container \"%s\" is not waiting to be started", id);
  if (write(fd, "G", 1) != 1) fail("container \"%s\" exited before it was started", id);
  close(fd);
  return 0;
}

/* Node's os.constants.signals (Linux) */
static const struct {
  const char *name;
  int sig;
} SIGNALS[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT},     {"ILL", SIGILL},       {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},     {"IOT", SIGIOT},       {"BUS", SIGBUS},       {"FPE", SIGFPE},       {"KILL", SIGKILL},
    {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
    {"TERM", SIGTERM},     {"CHLD", SIGCHLD},     {"STKFLT", SIGSTKFLT}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},     {"URG", SIGURG},       {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},     {"WINCH", SIGWINCH},   {"IO", SIGIO},
    {"POLL", SIGPOLL},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

/* main.ts parseSignal; 0 for what it would refuse */
static int parse_signal(const char *text) {
  if (!text) return SIGTERM;
  if (isdigit((unsigned char)*text)) {
    char *end;
    long n = strtol(text, &end, 10);
    return *end || n < 1 || n > 64 ? 0 : (int)n;
  }
  if (!strncasecmp(text, "SIG", 3)) text += 3;
  for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
    if (!strcasecmp(text, SIGNALS[i].name)) return SIGNALS[i].sig;
  return 0;
}

/* killContainer, without --all */
static int do_kill(const char *dir, struct record *r, const char *signal) {
  int sig = parse_signal(signal);
  enum status s = status_of(dir, r);
  if (!sig || s == STOPPED || s == CREATING) to_js();
  if (kill((pid_t)r->pid, sig) != 0 && errno != ESRCH) to_js();
  return 0;
}

/* deleteContainer of a stopped container without poststop hooks */
static int do_delete(const char *dir, struct record *r) {
  if (r->has_poststop || r->host_mounts || !r->dirs || !r->parents || status_of(dir, r) != STOPPED) to_js();
  /* removeIfEmpty: a cgroup that is not empty (or anything odd) is the JS's to kill and remove */
  for (char **d = r->dirs; *d; d++)
    if (rmdir(*d) != 0 && errno != ENOENT) to_js();
  for (char **d = r->parents; *d; d++) rmdir(*d); /* another container's still, or gone */
  /* the record's directory: state.json and its markers */
  DIR *dh = opendir(dir);
  if (!dh) to_js();
  int dfd = dirfd(dh);
  for (struct dirent *e; (e = readdir(dh));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (unlinkat(dfd, e->d_name, 0) != 0 && errno != ENOENT) to_js();
  }
  closedir(dh);
  if (rmdir(dir) != 0 && errno != ENOENT) to_js();
  return 0;
}

/* container.ts checkId */
static int valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 128 || !isalnum((unsigned char)id[0])) return 0;
  for (size_t i = 1; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && !strchr("_.+-", id[i])) return 0;
  return 1;
}

/* `--name value` or `--name=value` of a global option */
static const char *global_value(char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] == 0 && argv[*i + 1]) return argv[++*i];
  return NULL;
}

int main(int argc, char **argv) {
  g_argv = argv;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *v;
    if ((v = global_value(argv, &i, "--root"))) {
      if (v[0] != '/') to_js(); /* resolved against the cwd there */
      g_root = v;
    } else if ((v = global_value(argv, &i, "--log-format"))) {
      if (!strcmp(v, "json")) g_json = 1;
      else if (!strcmp(v, "text")) g_json = 0;
      else to_js();
    } else if ((v = global_value(argv, &i, "--log"))) {
      g_log = v;
    } else {
      to_js(); /* --debug, --help, --version, refused options, bad ones */
    }
  }
  if (i >= argc) to_js();
  const char *verb = argv[i++];
  /* the verb's own line: positionals, and --force/-f for delete; any other option is the JS's */
  int force = 0, npos = 0;
  const char *pos[2] = {0};
  int is_delete = !strcmp(verb, "delete"), is_kill = !strcmp(verb, "kill");
  if (!is_delete && !is_kill && strcmp(verb, "start") && strcmp(verb, "state")) to_js();
  for (; i < argc; i++) {
    if (argv[i][0] == '-') {
      if (is_delete && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))) force = 1;
      else to_js();
    } else {
      if (npos == (is_kill ? 2 : 1)) to_js();
      pos[npos++] = argv[i];
    }
  }
  if (npos == 0 || !valid_id(pos[0])) to_js();
  const char *id = pos[0];
  char dir[PATH_MAX];
  if ((size_t)snprintf(dir, sizeof dir, "%s/%s", g_root, id) >= sizeof dir - 32) to_js();
  if (is_delete && force) {
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT) return 0; /* deleteContainer: nothing to delete is done */
  }
  struct record r;
  if (read_record(dir, &r) != 0) to_js(); /* a missing container, one being created: the JS says */
  if (!strcmp(verb, "state")) return do_state(id, dir, &r);
  if (!strcmp(verb, "start")) return do_start(id, dir, &r);
  if (is_kill) return do_kill(dir, &r, pos[1]);
  return do_delete(dir, &r);
}
