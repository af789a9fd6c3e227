/*
 * Layer packing: one pass over a directory tree in overlayfs form (a server's upper
 * dir, or an extracted rootfs) that writes
 *   - an OCI layer tar (PAX, deterministic: entries sorted by name, numeric ids,
 *     whole-second mtimes, no user/group names, xattrs as SCHILY.xattr records),
 *     with overlay whiteouts turned into OCI whiteouts (0/0 char device NAME ->
 *     empty file .wh.NAME; opaque dir -> .wh..wh..opq inside it), and optionally
 *   - a mirror copy of the tree in overlay form, usable as an overlayfs lowerdir.
 * The tar's sha256 (the layer's diff id) is computed in the same pass, so the tar is
 * never read back: every byte goes through a small ring of write buffers; a buffer is
 * written out (pwrite) when full and then hashed by a second thread while the next one
 * fills (hashing 10 MiB takes ~6 ms with SHA-NI, the rest of packing ~7 ms: with a
 * free core they overlap; on a busy host it measured no slower than hashing inline).
 * Without a thread (pthread_create failed) the buffer is hashed inline. File data is
 * read straight into the buffers (pread). The mirror's copies use
 * copy_file_range (in the kernel, no user-space copy). The caller (src/images/layers.ts)
 * plans: which dir, which files, where; this executes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "novabox.h"
#include "sha256.h"

struct link_ent {
	dev_t dev;
	ino_t ino;
	char *path;
};

/* 256 KiB buffers stay in the L2 cache between pread, pwrite and the hash */
#define WBUF_SIZE (256u << 10)
#define NBUF 4

/*
 * Buffers 0..NBUF-1 in turn: the packer fills buf[filled % NBUF], writes it, hands it
 * over (filled++); the hasher hashes buffers in the same order (hashed++). The packer
 * reuses a buffer only once it is hashed. Without a thread, flush hashes inline.
 */
struct ring {
	char *buf[NBUF];
	size_t len[NBUF];
	uint64_t filled, hashed;
	int done, threaded;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	struct nb_sha256 sha;
};

static void *hasher(void *arg) {
	struct ring *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->hashed == r->filled && !r->done) pthread_cond_wait(&r->cv, &r->mu);
		if (r->hashed == r->filled) break;
		unsigned i = (unsigned)(r->hashed % NBUF);
		pthread_mutex_unlock(&r->mu);
		nb_sha256_update(&r->sha, r->buf[i], r->len[i]);
		pthread_mutex_lock(&r->mu);
		r->hashed++;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Always followed by ring_close, even when it fails (no memory: -1, nothing started). */
static int ring_open(struct ring *r) {
	memset(r, 0, sizeof *r);
	nb_sha256_init(&r->sha);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	for (int i = 0; i < NBUF; i++)
		if (!(r->buf[i] = malloc(WBUF_SIZE))) return -1;
	r->threaded = pthread_create(&r->thread, NULL, hasher, r) == 0;
	return 0;
}

/* Stop the hasher (after the buffers handed over are hashed) and free everything. */
static void ring_close(struct ring *r) {
	if (r->threaded) {
		pthread_mutex_lock(&r->mu);
		r->done = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
		r->threaded = 0;
	}
	for (int i = 0; i < NBUF; i++) free(r->buf[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

struct packer {
	int tarfd;
	off_t off;        /* bytes of tar produced so far (written + buffered) */
	off_t flushed;    /* bytes of tar written to tarfd */
	struct ring ring;
	char *wbuf;       /* the current buffer of the ring */
	size_t wlen;
	int mirror; /* dirfd of the mirror root, or -1 */
	char *err;
	size_t errlen;
	struct link_ent *links;
	size_t nlinks, caplinks;
	char *buf;
	uint64_t files, bytes;
	/* scratch space, used before any recursion: koffi runs async calls on a small stack */
	char pax[65536];
	char tname[PATH_MAX + 32];
	char proc[PATH_MAX + 64];
	char target[PATH_MAX];
	char xnames[16384];
	char xvals[65536];
	/* a writable layer of a container in its own user namespace holds host ids: those of
	 * its range go back to the container's (id - base), any other to 65534 (nobody), as
	 * the container itself saw them; count 0 = ids as they are */
	uint32_t uid_base, gid_base, id_count;
};

static void shift_ids(const struct packer *p, struct stat *st) {
	if (!p->id_count) return;
	st->st_uid = st->st_uid >= p->uid_base && st->st_uid - p->uid_base < p->id_count ? st->st_uid - p->uid_base : 65534;
	st->st_gid = st->st_gid >= p->gid_base && st->st_gid - p->gid_base < p->id_count ? st->st_gid - p->gid_base : 65534;
}

static int fail(struct packer *p, const char *path, const char *what, int e) {
	snprintf(p->err, p->errlen, "%s %s: %s", what, path[0] ? path : ".", strerror(e));
	errno = e;
	return -1;
}

/* Write the current buffer, hand it to the hasher, continue in the next free one. */
static int flush(struct packer *p) {
	struct ring *r = &p->ring;
	const char *c = p->wbuf;
	size_t len = p->wlen;
	while (len) {
		ssize_t n = pwrite(p->tarfd, c, len, p->flushed);
		if (n < 0) {
			if (errno == EINTR) continue;
			return fail(p, "", "write layer tar", errno);
		}
		c += n;
		len -= (size_t)n;
		p->flushed += n;
	}
	if (!r->threaded) {
		nb_sha256_update(&r->sha, p->wbuf, p->wlen);
		p->wlen = 0;
		return 0;
	}
	pthread_mutex_lock(&r->mu);
	r->len[r->filled % NBUF] = p->wlen;
	r->filled++;
	pthread_cond_broadcast(&r->cv);
	while (r->filled - r->hashed >= NBUF) pthread_cond_wait(&r->cv, &r->mu);
	p->wbuf = r->buf[r->filled % NBUF];
	pthread_mutex_unlock(&r->mu);
	p->wlen = 0;
	return 0;
}

static int out(struct packer *p, const void *data, size_t len) {
	const char *c = data;
	p->off += (off_t)len;
	while (len) {
		if (p->wlen == WBUF_SIZE && flush(p)) return -1;
		size_t k = WBUF_SIZE - p->wlen < len ? WBUF_SIZE - p->wlen : len;
		memcpy(p->wbuf + p->wlen, c, k);
		p->wlen += k;
		c += k;
		len -= k;
	}
	return 0;
}

/* A file's data into the tar: read straight into the write buffer, hashed there. */
static int out_file(struct packer *p, int src, uint64_t size, const char *rel) {
	off_t so = 0;
	while ((uint64_t)so < size) {
		if (p->wlen == WBUF_SIZE && flush(p)) return -1;
		size_t want = WBUF_SIZE - p->wlen;
		if ((uint64_t)want > size - (uint64_t)so) want = (size_t)(size - (uint64_t)so);
		ssize_t n = pread(src, p->wbuf + p->wlen, want, so);
		if (n < 0) {
			if (errno == EINTR) continue;
			return fail(p, rel, "read", errno);
		}
		if (n == 0) return fail(p, rel, "file shrank while packing", EIO);
		p->wlen += (size_t)n;
		p->off += n;
		so += n;
	}
	return 0;
}

static int pad(struct packer *p, uint64_t size) {
	static const char zero[512];
	size_t r = (size_t)(size % 512);
	return r ? out(p, zero, 512 - r) : 0;
}

static void octal(char *dst, size_t width, uint64_t v) {
	/* width includes the terminating NUL */
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), (unsigned long long)v);
	memcpy(dst, tmp, width - 1);
	dst[width - 1] = 0;
}

/* One PAX record "LEN key=value\n", LEN counting itself. */
static size_t pax_record(char *dst, size_t cap, const char *key, const char *val, size_t vlen) {
	size_t body = 1 + strlen(key) + 1 + vlen + 1;
	size_t len = body + 1, digits;
	for (;;) {
		char t[24];
		digits = (size_t)snprintf(t, sizeof t, "%zu", len);
		if (digits + body == len) break;
		len = digits + body;
	}
	if (len > cap) return 0;
	int n = snprintf(dst, cap, "%zu %s=", len, key);
	memcpy(dst + n, val, vlen);
	dst[len - 1] = '\n';
	return len;
}

static int header(struct packer *p, const char *name, char type, const struct stat *st, uint64_t size,
                  const char *linkname, const char *xnames, const char *xvals, const size_t *xlens, int nx) {
	char *pax = p->pax;
	const size_t paxcap = sizeof p->pax;
	size_t plen = 0;
	size_t nlen = strlen(name), llen = linkname ? strlen(linkname) : 0;
	if (nlen > 99) plen += pax_record(pax + plen, paxcap - plen, "path", name, nlen);
	if (llen > 99) plen += pax_record(pax + plen, paxcap - plen, "linkpath", linkname, llen);
	if (size > 077777777777ULL) {
		char s[24];
		int n = snprintf(s, sizeof s, "%llu", (unsigned long long)size);
		plen += pax_record(pax + plen, paxcap - plen, "size", s, (size_t)n);
	}
	const char *xn = xnames, *xv = xvals;
	for (int i = 0; i < nx; i++) {
		char key[300];
		snprintf(key, sizeof key, "SCHILY.xattr.%s", xn);
		size_t r = pax_record(pax + plen, paxcap - plen, key, xv, xlens[i]);
		if (!r) return fail(p, name, "xattrs too large on", E2BIG);
		plen += r;
		xn += strlen(xn) + 1;
		xv += xlens[i];
	}
	char h[512];
	struct stat zero = {0};
	if (plen) {
		memset(h, 0, sizeof h);
		snprintf(h, 100, "PaxHeaders/%.80s", name);
		octal(h + 100, 8, 0644);
		octal(h + 108, 8, 0);
		octal(h + 116, 8, 0);
		octal(h + 124, 12, plen);
		octal(h + 136, 12, 0);
		h[156] = 'x';
		memcpy(h + 257, "ustar", 6);
		memcpy(h + 263, "00", 2);
		memset(h + 148, ' ', 8);
		unsigned sum = 0;
		for (int i = 0; i < 512; i++) sum += (unsigned char)h[i];
		snprintf(h + 148, 8, "%06o", sum);
		if (out(p, h, 512) || out(p, pax, plen) || pad(p, plen)) return -1;
	}
	if (!st) st = &zero;
	memset(h, 0, sizeof h);
	memcpy(h, name, nlen > 100 ? 100 : nlen);
	octal(h + 100, 8, st->st_mode & 07777);
	octal(h + 108, 8, st->st_uid > 07777777 ? 0 : st->st_uid);
	octal(h + 116, 8, st->st_gid > 07777777 ? 0 : st->st_gid);
	octal(h + 124, 12, size > 077777777777ULL ? 0 : size);
	octal(h + 136, 12, st->st_mtim.tv_sec < 0 ? 0 : (uint64_t)st->st_mtim.tv_sec);
	h[156] = type;
	if (linkname) memcpy(h + 157, linkname, llen > 100 ? 100 : llen);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	if (type == '3' || type == '4') {
		octal(h + 329, 8, major(st->st_rdev));
		octal(h + 337, 8, minor(st->st_rdev));
	}
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++) sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	return out(p, h, 512);
}

static int is_overlay_xattr(const char *n) {
	return !strncmp(n, "trusted.overlay.", 16) || !strncmp(n, "user.overlay.", 13);
}

/* xattrs of fd (or, if fd < 0, of path) worth keeping (not overlayfs' own), sorted; *opaque set if the dir is opaque. */
static int read_xattrs(struct packer *p, int fd, const char *proc, const char *rel, char *names, size_t ncap, char *vals, size_t vcap,
                       size_t *lens, int *count, int *opaque) {
	char list[8192];
	*count = 0;
	if (opaque) *opaque = 0;
	ssize_t n = fd >= 0 ? flistxattr(fd, list, sizeof list) : listxattr(proc, list, sizeof list);
	if (n < 0) {
		if (errno == ENOTSUP || errno == ENODATA) return 0;
		return fail(p, rel, "list xattrs of", errno);
	}
	/* sort the names: a simple insertion sort over at most a few dozen */
	const char *ptrs[128];
	int k = 0;
	for (ssize_t i = 0; i < n && k < 128; i += (ssize_t)strlen(list + i) + 1) ptrs[k++] = list + i;
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && strcmp(ptrs[j - 1], ptrs[j]) > 0; j--) {
			const char *t = ptrs[j];
			ptrs[j] = ptrs[j - 1];
			ptrs[j - 1] = t;
		}
	size_t no = 0, vo = 0;
	for (int i = 0; i < k; i++) {
		const char *name = ptrs[i];
		if (is_overlay_xattr(name)) {
			if (opaque && (!strcmp(name, "trusted.overlay.opaque") || !strcmp(name, "user.overlay.opaque"))) {
				char v[4] = {0};
				if ((fd >= 0 ? fgetxattr(fd, name, v, sizeof v) : getxattr(proc, name, v, sizeof v)) > 0 && v[0] == 'y') *opaque = 1;
			}
			continue;
		}
		ssize_t vl = fd >= 0 ? fgetxattr(fd, name, vals + vo, vcap - vo) : getxattr(proc, name, vals + vo, vcap - vo);
		if (vl < 0) return fail(p, rel, "read xattr of", errno);
		size_t nl = strlen(name) + 1;
		if (no + nl > ncap) return fail(p, rel, "xattrs of", E2BIG);
		memcpy(names + no, name, nl);
		no += nl;
		lens[*count] = (size_t)vl;
		vo += (size_t)vl;
		(*count)++;
	}
	return 0;
}

static int copy_data(struct packer *p, int src, int dst, off_t *dst_off, uint64_t size, const char *rel) {
	off_t so = 0;
	uint64_t left = size;
	int use_cfr = 1;
	while (left) {
		ssize_t n = -1;
		if (use_cfr) {
			n = copy_file_range(src, &so, dst, dst_off, left > (1u << 30) ? (1u << 30) : left, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
				use_cfr = 0;
				continue;
			}
		} else {
			n = pread(src, p->buf, left > (1u << 20) ? (1u << 20) : left, so);
			if (n > 0) {
				ssize_t w = 0;
				while (w < n) {
					ssize_t m = dst_off ? pwrite(dst, p->buf + w, (size_t)(n - w), *dst_off + w) : write(dst, p->buf + w, (size_t)(n - w));
					if (m < 0) {
						if (errno == EINTR) continue;
						return fail(p, rel, "copy", errno);
					}
					w += m;
				}
				so += n;
				if (dst_off) *dst_off += n;
			}
		}
		if (n < 0) {
			if (errno == EINTR) continue;
			return fail(p, rel, "copy", errno);
		}
		if (n == 0) return fail(p, rel, "file shrank while packing", EIO);
		left -= (uint64_t)n;
	}
	return 0;
}

static int mirror_meta(struct packer *p, const char *rel, const struct stat *st, const char *xnames, const char *xvals,
                       const size_t *xlens, int nx, int opaque, int times) {
	if (p->mirror < 0) return 0;
	char proc[64];
	int fd = openat(p->mirror, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return fail(p, rel, "open mirror", errno);
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	const char *xn = xnames, *xv = xvals;
	int rc = 0;
	if (fchownat(fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) rc = fail(p, rel, "chown mirror", errno);
	if (!rc && !S_ISLNK(st->st_mode) && chmod(proc, st->st_mode & 07777)) rc = fail(p, rel, "chmod mirror", errno);
	for (int i = 0; !rc && i < nx; i++) {
		if (!S_ISLNK(st->st_mode) && setxattr(proc, xn, xv, xlens[i], 0)) rc = fail(p, rel, "set xattr on mirror", errno);
		xn += strlen(xn) + 1;
		xv += xlens[i];
	}
	if (!rc && opaque && setxattr(proc, "trusted.overlay.opaque", "y", 1, 0)) rc = fail(p, rel, "mark mirror opaque", errno);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (!rc && times && utimensat(p->mirror, rel, ts, AT_SYMLINK_NOFOLLOW)) rc = fail(p, rel, "set times on mirror", errno);
	close(fd);
	return rc;
}

static int cmpstr(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int pack_dir(struct packer *p, int dirfd, const char *rel);

static int pack_body(struct packer *p, int parent, const char *name, const char *rel, const struct stat *stp, int fd,
                     const size_t *xlens, int nx, int opaque);

static int pack_entry(struct packer *p, int parent, const char *name, const char *rel) {
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW)) return fail(p, rel, "stat", errno);
	shift_ids(p, &st);
	char *tname = p->tname;
	const size_t tcap = sizeof p->tname;
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
		/* overlay whiteout -> OCI whiteout */
		const char *slash = strrchr(rel, '/');
		size_t dl = slash ? (size_t)(slash - rel + 1) : 0;
		snprintf(tname, tcap, "%.*s.wh.%s", (int)dl, rel, slash ? slash + 1 : rel);
		struct stat w = {0};
		w.st_mode = S_IFREG;
		w.st_mtim = st.st_mtim;
		if (header(p, tname, '0', &w, 0, NULL, NULL, NULL, NULL, 0)) return -1;
		if (p->mirror >= 0 && mknodat(p->mirror, rel, S_IFCHR, makedev(0, 0))) return fail(p, rel, "mknod whiteout in mirror", errno);
		p->files++;
		return 0;
	}
	/*
	 * Regular files and directories are opened once, for their xattrs and their data or
	 * entries; symlinks have no xattrs worth keeping; device nodes and fifos are never
	 * opened for real (side effects, blocking): their xattrs are read through an O_PATH fd.
	 */
	size_t xlens[128];
	int nx = 0, opaque = 0, rc = 0, fd = -1;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		fd = openat(parent, name, (S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) return fail(p, rel, S_ISDIR(st.st_mode) ? "open directory" : "open", errno);
		rc = read_xattrs(p, fd, NULL, rel, p->xnames, sizeof p->xnames, p->xvals, sizeof p->xvals, xlens, &nx, S_ISDIR(st.st_mode) ? &opaque : NULL);
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
		int pfd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0) return fail(p, rel, "open", errno);
		snprintf(p->proc, sizeof p->proc, "/proc/self/fd/%d", pfd);
		rc = read_xattrs(p, -1, p->proc, rel, p->xnames, sizeof p->xnames, p->xvals, sizeof p->xvals, xlens, &nx, NULL);
		close(pfd);
	}
	if (!rc) rc = pack_body(p, parent, name, rel, &st, fd, xlens, nx, opaque);
	if (fd >= 0) close(fd);
	return rc;
}

/* The entry's tar records (and mirror copy); fd is the open file or directory, else -1. */
static int pack_body(struct packer *p, int parent, const char *name, const char *rel, const struct stat *stp, int fd,
                     const size_t *xlens, int nx, int opaque) {
	const struct stat st = *stp;
	char *tname = p->tname;
	const size_t tcap = sizeof p->tname;
	char *xnames = p->xnames, *xvals = p->xvals;
	int rc = 0;
	if (S_ISDIR(st.st_mode)) {
		snprintf(tname, tcap, "%s/", rel);
		if (header(p, tname, '5', &st, 0, NULL, xnames, xvals, xlens, nx)) return -1;
		if (opaque) {
			snprintf(tname, tcap, "%s/.wh..wh..opq", rel);
			struct stat w = {0};
			w.st_mode = S_IFREG;
			w.st_mtim = st.st_mtim;
			if (header(p, tname, '0', &w, 0, NULL, NULL, NULL, NULL, 0)) return -1;
		}
		if (p->mirror >= 0 && mkdirat(p->mirror, rel, 0700)) return fail(p, rel, "mkdir in mirror", errno);
		/* owner, mode and xattrs now (the buffers are reused below), times after the children */
		if (mirror_meta(p, rel, &st, xnames, xvals, xlens, nx, opaque, 0)) return -1;
		rc = pack_dir(p, fd, rel);
		if (rc) return rc;
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		if (p->mirror >= 0 && utimensat(p->mirror, rel, ts, AT_SYMLINK_NOFOLLOW)) return fail(p, rel, "set times on mirror", errno);
		return 0;
	}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < p->nlinks; i++) {
			if (p->links[i].dev == st.st_dev && p->links[i].ino == st.st_ino) {
				struct stat h = st;
				if (header(p, rel, '1', &h, 0, p->links[i].path, NULL, NULL, NULL, 0)) return -1;
				if (p->mirror >= 0 && linkat(p->mirror, p->links[i].path, p->mirror, rel, 0)) return fail(p, rel, "link in mirror", errno);
				return 0;
			}
		}
		if (p->nlinks == p->caplinks) {
			p->caplinks = p->caplinks ? p->caplinks * 2 : 64;
			p->links = realloc(p->links, p->caplinks * sizeof *p->links);
			if (!p->links) return fail(p, rel, "remember hard link", ENOMEM);
		}
		p->links[p->nlinks++] = (struct link_ent){st.st_dev, st.st_ino, strdup(rel)};
	}
	p->files++;
	if (S_ISREG(st.st_mode)) {
		if (header(p, rel, '0', &st, (uint64_t)st.st_size, NULL, xnames, xvals, xlens, nx)) return -1;
		int src = fd;
		rc = out_file(p, src, (uint64_t)st.st_size, rel);
		if (!rc) rc = pad(p, (uint64_t)st.st_size);
		if (!rc && p->mirror >= 0) {
			int dst = openat(p->mirror, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (dst < 0) rc = fail(p, rel, "create in mirror", errno);
			else {
				off_t doff = 0;
				rc = copy_data(p, src, dst, &doff, (uint64_t)st.st_size, rel);
				close(dst);
			}
		}
		p->bytes += (uint64_t)st.st_size;
		if (rc) return rc;
	} else if (S_ISLNK(st.st_mode)) {
		char *target = p->target;
		ssize_t n = readlinkat(parent, name, target, sizeof p->target - 1);
		if (n < 0) return fail(p, rel, "readlink", errno);
		target[n] = 0;
		if (header(p, rel, '2', &st, 0, target, NULL, NULL, NULL, 0)) return -1;
		if (p->mirror >= 0 && symlinkat(target, p->mirror, rel)) return fail(p, rel, "symlink in mirror", errno);
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
		char t = S_ISCHR(st.st_mode) ? '3' : S_ISBLK(st.st_mode) ? '4' : '6';
		if (header(p, rel, t, &st, 0, NULL, xnames, xvals, xlens, nx)) return -1;
		if (p->mirror >= 0 && mknodat(p->mirror, rel, st.st_mode & S_IFMT, st.st_rdev)) return fail(p, rel, "mknod in mirror", errno);
	} else {
		return 0; /* sockets are not packed (as tar does) */
	}
	return mirror_meta(p, rel, &st, xnames, xvals, xlens, nx, 0, 1);
}

static int pack_dir(struct packer *p, int dirfd, const char *rel) {
	int d = dup(dirfd);
	if (d < 0) return fail(p, rel, "dup", errno);
	DIR *dir = fdopendir(d);
	if (!dir) {
		close(d);
		return fail(p, rel, "read directory", errno);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(names, cap * sizeof *names);
			if (!nn) break;
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof *names, cmpstr);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rc) {
			char *child = NULL;
			if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) < 0) rc = fail(p, rel, "path under", ENOMEM);
			else if (strlen(child) >= PATH_MAX) rc = fail(p, rel, "path too long under", ENAMETOOLONG);
			else rc = pack_entry(p, dirfd, names[i], child);
			free(child);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

struct syncer {
	int fd, err;
	pthread_t thread;
};

static void *run_syncfs(void *arg) {
	struct syncer *sy = arg;
	sy->err = syncfs(sy->fd) ? errno : 0;
	return NULL;
}

/*
 * Pack src into tarfd (written from offset 0) and, if mirror is set, copy it there; the
 * tar's sha256 goes to digest[32]. Ids in [uid_base, uid_base + id_count) (and the gid
 * range) go back to the container's own, 0.., as a snapshot of a container in its own user
 * namespace needs; id_count 0 keeps them as they are. Returns the tar's size, or -1 with
 * err filled.
 */
NB_API int64_t nb_layer_pack_shifted(const char *src, int tarfd, const char *mirror, int do_syncfs, uint32_t uid_base, uint32_t gid_base,
                                     uint32_t id_count, uint8_t *digest, char *err, uint32_t errlen) {
	struct packer *pp = calloc(1, sizeof *pp);
	if (!pp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pp->uid_base = uid_base;
	pp->gid_base = gid_base;
	pp->id_count = id_count;
	pp->tarfd = tarfd;
	pp->mirror = -1;
	pp->err = err;
	pp->errlen = errlen;
#define p (*pp)
	err[0] = 0;
	int root = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		fail(&p, src, "open", errno);
		free(pp);
		return -1;
	}
	/*
	 * syncfs runs on its own thread beside the packing: both are done before this returns,
	 * i.e. inside the caller's freeze, and the packer reads the page cache, which the sync
	 * does not change. Waiting for the journal commit (~1-3 ms) overlaps the packing.
	 */
	struct syncer sy = {.fd = root};
	int syncing = do_syncfs && pthread_create(&sy.thread, NULL, run_syncfs, &sy) == 0;
	if (do_syncfs && !syncing) run_syncfs(&sy);
	p.buf = malloc(1u << 20);
	int rc = 0;
	if (ring_open(&p.ring) || !p.buf) rc = fail(&p, src, "pack", ENOMEM);
	p.wbuf = p.ring.buf[0];
	if (!rc && mirror) {
		p.mirror = open(mirror, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (p.mirror < 0) rc = fail(&p, mirror, "open mirror", errno);
	}
	if (!rc) rc = pack_dir(&p, root, "");
	if (!rc) {
		/* the root's own metadata goes to the mirror; the tar has no "./" entry */
		struct stat st;
		if (fstat(root, &st)) rc = fail(&p, src, "stat", errno);
		else if (p.mirror >= 0) {
			shift_ids(&p, &st);
			if (fchown(p.mirror, st.st_uid, st.st_gid) || fchmod(p.mirror, st.st_mode & 07777)) rc = fail(&p, mirror, "set owner/mode of", errno);
		}
	}
	if (!rc) {
		static const char end[1024];
		rc = out(&p, end, sizeof end);
	}
	if (!rc) rc = flush(&p);
	ring_close(&p.ring); /* every buffer handed over is hashed once this returns */
	if (syncing) pthread_join(sy.thread, NULL);
	if (!rc && do_syncfs && sy.err) rc = fail(&p, src, "syncfs", sy.err);
	if (!rc) nb_sha256_final(&p.ring.sha, digest);
	for (size_t i = 0; i < p.nlinks; i++) free(p.links[i].path);
	free(p.links);
	free(p.buf);
	if (p.mirror >= 0) close(p.mirror);
	close(root);
	int64_t result = rc ? -1 : (int64_t)p.off;
	free(pp);
	return result;
#undef p
}

/* OCI whiteouts back into overlay form, after extraction: dir/.wh.NAME -> 0/0 char device dir/NAME. */
NB_API int nb_layer_whiteout(const char *path) {
	unlink(path);
	if (mknod(path, S_IFCHR, makedev(0, 0))) return -errno;
	return 0;
}

NB_API int nb_layer_set_opaque(const char *dir) {
	if (lsetxattr(dir, "trusted.overlay.opaque", "y", 1, 0)) return -errno;
	return 0;
}

/*
 * `server cp`: open path inside the tree whose root is root_fd, as the ops do
 * (openat2(2) RESOLVE_IN_ROOT: "..", absolute symlinks and absolute paths stay below the
 * root; RESOLVE_NO_MAGICLINKS: no /proc/<pid>/fd jump out of it). With O_NOFOLLOW the last
 * component is not followed either. fd, or -errno.
 */
NB_API int nb_open_in_root(int root_fd, const char *path, int oflags) {
	struct open_how how = { .flags = (uint64_t)(oflags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd;
	/* EAGAIN: a rename or mount on the host during a walk through "..": retry (bounded) */
	for (int tries = 0;; tries++) {
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN || tries >= 256) break;
	}
	return fd < 0 ? -errno : fd;
}

/* nb_layer_is_opaque: src/opaque.c (also in novabox.node, where a server's create asks it) */
