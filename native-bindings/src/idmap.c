/*
 * nb_idmap_take: the id range lease of src/runtime/userns/leases.ts (takeLease over
 * subid.ts's freeSlots), taken in C on `run`'s start path. The same work in JavaScript
 * cost ~1 ms of CPU per start in a fresh process (four small files parsed, sixteen
 * candidate slots, a directory read, a link), most of it cold code and first-use regex
 * compilation; here it is a few syscalls. The JavaScript stays the reference and does
 * everything this does not: whenever anything is unusual (a file missing, unreadable or
 * malformed beyond what shadow skips, no entry for root, a number past 2^32, no free
 * slot, the lease directory missing, an error other than EEXIST) this returns
 * NB_IDMAP_ASK_JS having made nothing, and the caller runs takeLease, which adds root's
 * entry, says why it cannot, or takes the lease. So the sentences of bad input have one
 * source, and this path only ever makes the one link a success makes.
 *
 * The rules, as subid.ts has them: root's entries of subuid(5) and subgid(5) (owner
 * "root", "0" or another name of uid 0 in passwd) cut into slots of RANGE_SIZE ids, slot
 * n the n-th of root's uid entries (file order) with the n-th of its gid entries; a slot
 * holding an id of passwd (group) is skipped, so is one taken (a link named n) or
 * overlapping a range a link holds. The link is format 2 (leases.ts encodeLease).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "novabox.h"
#include "internal.h"

#define RANGE 65536u
#define FILE_MAX (1u << 20) /* larger: the JavaScript reads it */
#define MAX_ENTRIES 256
#define MAX_IDS 8192
#define MAX_LINKS 4096 /* slot numbers below this: a bitmap */

struct entry {
	const char *owner;
	size_t olen;
	uint64_t start, count;
};

struct used {
	uint64_t uid, gid, size;
};

static char *read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < FILE_MAX)
		buf = malloc((size_t)st.st_size + 1);
	/* one read past the size: a file that grew meanwhile is JavaScript's */
	while (buf && (r = read(fd, buf + n, (size_t)st.st_size + 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	/* a NUL inside: JavaScript reads past it, C strings would not */
	if (!buf || r < 0 || n > (size_t)st.st_size || memchr(buf, '\0', n)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* decimal digits only, at least one, below 2^32 (what a uid_map takes); else -1 */
static int64_t digits(const char *s, size_t len)
{
	uint64_t v = 0;

	if (!len || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v > 0xffffffffull ? -1 : (int64_t)v;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * subuid(5) lines as parseSubid: trimmed, blank and '#' lines skipped, `owner:start:count`
 * with digits; other malformed lines skipped (shadow does). -1: a number we would read
 * differently from JavaScript (past 2^32) or too many entries: ask JavaScript.
 */
static int parse_subid(char *text, struct entry *out, int max)
{
	int n = 0;

	for (char *line = text, *next; line; line = next) {
		char *end = strchr(line, '\n'), *f[4];
		int nf = 0;

		next = end ? end + 1 : NULL;
		if (!end)
			end = line + strlen(line);
		for (char *p = line; p < end; p++)
			if ((unsigned char)*p >= 0x80)
				return -1; /* JavaScript's trim() knows more spaces than is_space */
		while (line < end && is_space(*line))
			line++;
		while (end > line && is_space(end[-1]))
			end--;
		if (line == end || *line == '#')
			continue;
		f[nf++] = line;
		for (char *p = line; p < end; p++)
			if (*p == ':') {
				if (nf == 4)
					break;
				f[nf++] = p + 1;
			}
		if (nf != 3 || f[1] - f[0] < 2)
			continue;
		{
			size_t slen = (size_t)(f[2] - f[1] - 1), clen = (size_t)(end - f[2]);
			int64_t start = digits(f[1], slen), count = digits(f[2], clen);
			int plain = 1;

			for (size_t i = 0; i < slen; i++)
				plain &= f[1][i] >= '0' && f[1][i] <= '9';
			for (size_t i = 0; i < clen; i++)
				plain &= f[2][i] >= '0' && f[2][i] <= '9';
			if (!plain || !slen || !clen)
				continue; /* not digits: skipped, as parseSubid does */
			if (start < 0 || count < 0 || n == max)
				return -1; /* digits past 2^32: JavaScript's Number reads them its way */
			out[n].owner = f[0];
			out[n].olen = (size_t)(f[1] - f[0] - 1);
			out[n].start = (uint64_t)start;
			out[n].count = (uint64_t)count;
			n++;
		}
	}
	return n;
}

/*
 * passwd(5)/group(5) as parseIdTable: `name:x:id:...`, name non-empty, id digits. The
 * ids into ids[], and with names0, the names whose id is 0. -1: past what we hold.
 */
static int parse_ids(char *text, int64_t *ids, int max, struct entry *names0, int *n0, int max0)
{
	int n = 0;

	for (char *line = text, *next; line; line = next) {
		char *end = strchr(line, '\n'), *c1, *c2, *c3;

		next = end ? end + 1 : NULL;
		if (!end)
			end = line + strlen(line);
		c1 = memchr(line, ':', (size_t)(end - line));
		if (!c1 || c1 == line)
			continue;
		c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
		if (!c2)
			continue;
		c3 = memchr(c2 + 1, ':', (size_t)(end - c2 - 1));
		if (!c3)
			c3 = end;
		{
			size_t len = (size_t)(c3 - c2 - 1);
			int plain = len > 0;
			int64_t id;

			for (size_t i = 0; i < len; i++)
				plain &= c2[1 + i] >= '0' && c2[1 + i] <= '9';
			if (!plain)
				continue;
			id = digits(c2 + 1, len);
			if (id < 0 || n == max)
				return -1;
			ids[n++] = id;
			if (names0 && id == 0) {
				if (*n0 == max0)
					return -1;
				names0[*n0].owner = line;
				names0[*n0].olen = (size_t)(c1 - line);
				(*n0)++;
			}
		}
	}
	return n;
}

static int is_root(const struct entry *e, const struct entry *names0, int n0)
{
	if ((e->olen == 4 && !memcmp(e->owner, "root", 4)) || (e->olen == 1 && e->owner[0] == '0'))
		return 1;
	for (int i = 0; i < n0; i++)
		if (names0[i].olen == e->olen && !memcmp(names0[i].owner, e->owner, e->olen))
			return 1;
	return 0;
}

/* root's entries, in file order, kept at the front of e[] */
static int root_only(struct entry *e, int n, const struct entry *names0, int n0)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (is_root(&e[i], names0, n0))
			e[k++] = e[i];
	return k;
}

static uint64_t slot_count(const struct entry *e, int n)
{
	uint64_t s = 0;

	for (int i = 0; i < n; i++)
		s += e[i].count / RANGE;
	return s;
}

static uint64_t slot_base(const struct entry *e, int n, uint64_t slot)
{
	for (int i = 0; i < n; i++) {
		uint64_t k = e[i].count / RANGE;

		if (slot < k)
			return e[i].start + slot * RANGE;
		slot -= k;
	}
	return UINT64_MAX;
}

static int holds_id(const int64_t *ids, int n, uint64_t base)
{
	for (int i = 0; i < n; i++)
		if ((uint64_t)ids[i] >= base && (uint64_t)ids[i] < base + RANGE)
			return 1;
	return 0;
}

static uint64_t b36(const char *s, size_t len, int *ok)
{
	uint64_t v = 0;

	if (!len || len > 12)
		*ok = 0;
	for (size_t i = 0; i < len && *ok; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v * 36 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'z')
			v = v * 36 + (uint64_t)(c - 'a' + 10);
		else
			*ok = 0;
	}
	return v;
}

/*
 * The range a link's target holds, as decodeLease reads it: format 2 `<c|s><owner> <uid36>
 * <gid36|=> ...` (RANGE ids), format 1 `nbidmap1 <kind> <owner> <uid> <gid> <size> ...`.
 * 0: not a lease this understands (its slot still counts as taken).
 */
static int link_range(const char *t, struct used *u)
{
	const char *f[12];
	size_t len[12];
	int nf = 0, ok = 1;

	for (const char *p = t; nf < 12;) {
		const char *sp = strchr(p, ' ');

		f[nf] = p;
		len[nf] = sp ? (size_t)(sp - p) : strlen(p);
		nf++;
		if (!sp)
			break;
		p = sp + 1;
	}
	if (len[0] == 8 && !memcmp(f[0], "nbidmap1", 8)) {
		int64_t a, b, c;

		if (nf != 11)
			return 0;
		a = digits(f[3], len[3]);
		b = digits(f[4], len[4]);
		c = digits(f[5], len[5]);
		if (a < 0 || b < 0 || c < 0)
			return -1; /* Number() may read it otherwise: JavaScript judges */
		u->uid = (uint64_t)a;
		u->gid = (uint64_t)b;
		u->size = (uint64_t)c;
		return 1;
	}
	if (nf != 7 || (t[0] != 'c' && t[0] != 's') || len[0] < 2 || len[1] > 7 || len[2] > 7)
		return 0;
	u->uid = b36(f[1], len[1], &ok);
	u->gid = len[2] == 1 && f[2][0] == '=' ? u->uid : b36(f[2], len[2], &ok);
	u->size = RANGE;
	/* a range held is avoided even where decodeLease would refuse the rest of the link
	 * (the safe side); an undecodable one only takes its slot, as in JavaScript */
	return ok;
}

static int overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a < b + bs && b < a + as;
}

static size_t put_b36(char *out, uint64_t v)
{
	char tmp[16];
	size_t n = 0, i;

	do {
		unsigned d = (unsigned)(v % 36);

		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= 36;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* field 22 of /proc/self/stat: our start time in clock ticks since boot */
static int self_start(uint64_t *start)
{
	char buf[1024], *p;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ") ": field 3 (state) on; field 22 is the 20th from there */
	p += 2;
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -1;
	*start = strtoull(p, NULL, 10);
	return 0;
}

static int boot_id(char out[37])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, 36);
	close(fd);
	if (n != 36)
		return -1;
	out[36] = '\0';
	return 0;
}

static void free_all(char **texts, int n)
{
	for (int i = 0; i < n; i++)
		free(texts[i]);
}

static char links[1u << 18]; /* "slot target\n" of each link read, for the caller's gc */

int nb_idmap_take(const char *dir, const char *const files[4], char kind, const char *owner, char *out, size_t out_len)
{
	static struct entry uidv[MAX_ENTRIES], gidv[MAX_ENTRIES], names0[64];
	static int64_t pw_ids[MAX_IDS], gr_ids[MAX_IDS];
	static struct used used[MAX_LINKS];
	static unsigned char taken[MAX_LINKS / 8];
	char *texts[4] = { NULL, NULL, NULL, NULL }, boot[37], target[128], path[PATH_MAX], nonce[9];
	int nu, ng, npw, ngr, n0 = 0, nused = 0, rc = NB_IDMAP_ASK_JS;
	uint64_t total, start;
	size_t at, olen, nlinks = 0;
	unsigned char rnd[8];
	DIR *d;
	struct dirent *de;

	memset(taken, 0, sizeof(taken));
	for (int i = 0; i < 4; i++) {
		texts[i] = read_text(files[i]);
		if (!texts[i])
			goto out;
	}
	/* passwd first: root's names are needed to pick root's entries */
	npw = parse_ids(texts[2], pw_ids, MAX_IDS, names0, &n0, 64);
	ngr = parse_ids(texts[3], gr_ids, MAX_IDS, NULL, NULL, 0);
	nu = parse_subid(texts[0], uidv, MAX_ENTRIES);
	ng = parse_subid(texts[1], gidv, MAX_ENTRIES);
	if (npw < 0 || ngr < 0 || nu < 0 || ng < 0)
		goto out;
	nu = root_only(uidv, nu, names0, n0);
	ng = root_only(gidv, ng, names0, n0);
	total = slot_count(uidv, nu);
	if (slot_count(gidv, ng) < total)
		total = slot_count(gidv, ng);
	if (!nu || !ng || !total)
		goto out; /* no entry for root (JavaScript adds one) or too small (it says so) */

	d = opendir(dir);
	if (!d)
		goto out; /* the first lease of this state root: JavaScript makes the directory */
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		size_t nlen = strlen(name);
		char t[256];
		ssize_t n;
		int64_t slot;
		int r;

		if (!nlen || strspn(name, "0123456789") != nlen)
			continue; /* not a slot (a removal marker): JavaScript's /^\d+$/ skips it too */
		slot = digits(name, nlen);
		if (slot < 0 || slot >= MAX_LINKS || (name[0] == '0' && nlen > 1) || nused == MAX_LINKS) {
			closedir(d);
			goto out; /* beyond this fast path's tables (or "007"): JavaScript counts it */
		}
		taken[slot / 8] |= (unsigned char)(1u << (slot % 8));
		n = readlinkat(dirfd(d), name, t, sizeof(t) - 1);
		if (n <= 0)
			continue; /* unreadable: taken, no range (as listLeases) */
		t[n] = '\0';
		r = link_range(t, &used[nused]);
		if (r < 0 || nlinks + nlen + (size_t)n + 2 >= sizeof(links)) {
			closedir(d);
			goto out;
		}
		if (r > 0)
			nused++;
		nlinks += (size_t)snprintf(links + nlinks, sizeof(links) - nlinks, "%s %s\n", name, t);
	}
	closedir(d);

	if (self_start(&start) < 0 || boot_id(boot) < 0 || getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		goto out;
	{
		uint64_t r = 0;

		for (int i = 0; i < 8; i++)
			r = (r << 8) | rnd[i];
		r %= 2821109907456ull; /* 36^8 */
		for (int i = 7; i >= 0; i--) {
			unsigned dgt = (unsigned)(r % 36);

			nonce[i] = (char)(dgt < 10 ? '0' + dgt : 'a' + dgt - 10);
			r /= 36;
		}
		nonce[8] = '\0';
	}
	olen = strnlen(owner, 16);
	for (uint64_t n = 0; n < total; n++) {
		uint64_t ub = slot_base(uidv, nu, n), gb = slot_base(gidv, ng, n);
		int busy = 0;

		if (holds_id(pw_ids, npw, ub) || holds_id(gr_ids, ngr, gb))
			continue;
		if (n < MAX_LINKS && (taken[n / 8] & (1u << (n % 8))))
			continue; /* (no link numbered MAX_LINKS or more exists: see above) */
		for (int i = 0; i < nused && !busy; i++)
			busy = overlaps(ub, RANGE, used[i].uid, used[i].size) || overlaps(gb, RANGE, used[i].gid, used[i].size);
		if (busy)
			continue;
		at = 0;
		target[at++] = kind;
		memcpy(target + at, owner, olen);
		at += olen;
		target[at++] = ' ';
		at += put_b36(target + at, ub);
		target[at++] = ' ';
		if (gb == ub)
			target[at++] = '=';
		else
			at += put_b36(target + at, gb);
		target[at++] = ' ';
		at += put_b36(target + at, (uint64_t)getpid());
		target[at++] = ' ';
		at += put_b36(target + at, start);
		target[at++] = ' ';
		memcpy(target + at, boot, 8);
		at += 8;
		target[at++] = ' ';
		memcpy(target + at, nonce, 8);
		at += 8;
		target[at] = '\0';
		snprintf(path, sizeof(path), "%s/%llu", dir, (unsigned long long)n);
		if (symlink(target, path) == 0) {
			/* "slot uidBase gidBase start bootid nonce\n" then the links read */
			int w = snprintf(out, out_len, "%llu %llu %llu %llu %s %s\n%.*s", (unsigned long long)n,
					 (unsigned long long)ub, (unsigned long long)gb, (unsigned long long)start, boot,
					 nonce, (int)nlinks, links);

			if (w < 0 || (size_t)w >= out_len) {
				unlink(path);
				goto out;
			}
			rc = w;
			goto out;
		}
		if (errno != EEXIST)
			goto out; /* JavaScript meets it again and says what it is */
	}
out:
	free_all(texts, 4);
	return rc;
}
