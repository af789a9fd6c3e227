/*
 * Network plumbing over rtnetlink (rtnetlink(7), netlink(7)), called from Node through
 * koffi while the container init waits for GO:
 *
 *   nb_net_bridge  the host bridge, created on first use: link, gateway address, up
 *   nb_net_attach  one veth pair per container, made by ONE RTM_NEWLINK: the host end on
 *                  the bridge and up, the peer created straight inside the container's
 *                  network namespace (IFLA_NET_NS_FD) as eth0 with its MAC; then,
 *                  through a netlink socket opened inside that namespace: lo and eth0
 *                  up, the address, the default route via the gateway
 *   nb_net_link_del  remove a link by name (a stale veth, a bridge)
 *
 * Entering the namespace: setns(CLONE_NEWNET) applies to the calling thread only and,
 * unlike a mount or user namespace, is allowed in a multi-threaded process (setns(2)).
 * A netlink socket stays bound to the namespace it was created in (netlink(7)), so the
 * thread goes in, opens the socket (and the per-namespace sysctl file), and comes back
 * at once: Node's main thread spends microseconds outside the host's namespace.
 *
 * iproute2 would need five exec'd `ip` processes per container (~2 ms each here);
 * this is a handful of syscalls (bench/network.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "novabox.h"

#define BUF_SIZE 4096

struct req {
	struct nlmsghdr *h;
	char buf[BUF_SIZE];
	uint32_t seq;
};

static void req_init(struct req *r, uint16_t type, uint16_t flags, const void *body, size_t len)
{
	memset(r->buf, 0, NLMSG_SPACE(len));
	r->h = (struct nlmsghdr *)r->buf;
	r->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
	r->h->nlmsg_type = type;
	r->h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	memcpy(NLMSG_DATA(r->h), body, len);
}

/* Append an attribute; returns it (for nesting) or NULL when the buffer is full. */
static struct rtattr *attr(struct req *r, uint16_t type, const void *data, size_t len)
{
	uint32_t off = NLMSG_ALIGN(r->h->nlmsg_len);
	struct rtattr *a = (struct rtattr *)(r->buf + off);

	if (off + RTA_SPACE(len) > BUF_SIZE)
		return NULL;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	r->h->nlmsg_len = off + (uint32_t)RTA_SPACE(len);
	return a;
}

static struct rtattr *attr_str(struct req *r, uint16_t type, const char *s)
{
	return attr(r, type, s, strlen(s) + 1);
}

static struct rtattr *nest(struct req *r, uint16_t type)
{
	return attr(r, type, NULL, 0);
}

static void nest_end(struct req *r, struct rtattr *a)
{
	a->rta_len = (unsigned short)((r->buf + r->h->nlmsg_len) - (char *)a);
}

static int nl_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * Send one request and read its answer: 0, -errno from the kernel's NLMSG_ERROR, or,
 * for RTM_GETLINK, the ifindex of the link in the reply (*ifindex).
 */
static int nl_talk(int fd, struct req *r, int *ifindex)
{
	static uint32_t seq;
	char buf[8192];
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	ssize_t n;

	r->h->nlmsg_seq = ++seq;
	do
		n = sendto(fd, r->buf, r->h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (;;) {
		struct nlmsghdr *h;

		do
			n = recv(fd, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (uint32_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->h->nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;
			}
			if (h->nlmsg_type == RTM_NEWLINK && ifindex) {
				struct ifinfomsg *ifi = NLMSG_DATA(h);
				*ifindex = ifi->ifi_index;
			}
		}
	}
}

static int link_index(int fd, const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct req r;
	int index = 0, rc;

	req_init(&r, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	attr_str(&r, IFLA_IFNAME, name);
	rc = nl_talk(fd, &r, &index);
	if (rc < 0)
		return rc;
	return index > 0 ? index : -ENODEV;
}

static int link_up(int fd, int index, const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	struct req r;

	req_init(&r, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	if (name)
		attr_str(&r, IFLA_IFNAME, name);
	return nl_talk(fd, &r, NULL);
}

static int addr_add(int fd, int index, uint32_t addr, uint32_t prefix_len)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (uint8_t)prefix_len, .ifa_index = (uint32_t)index };
	uint32_t brd = prefix_len >= 31 ? 0 : (addr | htonl(~0u >> prefix_len));
	struct req r;

	req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	attr(&r, IFA_LOCAL, &addr, 4);
	attr(&r, IFA_ADDRESS, &addr, 4);
	if (brd)
		attr(&r, IFA_BROADCAST, &brd, 4);
	return nl_talk(fd, &r, NULL);
}

static int link_del(int fd, const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct req r;

	req_init(&r, RTM_DELLINK, 0, &ifi, sizeof(ifi));
	attr_str(&r, IFLA_IFNAME, name);
	return nl_talk(fd, &r, NULL);
}

static int name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n < IFNAMSIZ && !strchr(name, '/');
}

int nb_net_link_del(const char *name)
{
	int fd, rc;

	if (!name_ok(name))
		return -EINVAL;
	fd = nl_open();
	if (fd < 0)
		return fd;
	rc = link_del(fd, name);
	close(fd);
	return rc;
}

int nb_net_bridge(const struct nb_net_bridge_args *a)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	struct rtattr *info;
	struct req r;
	int fd, rc, created = 1, index;

	if (!name_ok(a->name) || a->prefix_len == 0 || a->prefix_len > 30)
		return -EINVAL;
	fd = nl_open();
	if (fd < 0)
		return fd;
	req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	attr_str(&r, IFLA_IFNAME, a->name);
	/* A fixed MAC: a bridge otherwise takes the lowest of its ports' and changes as they come and go. */
	attr(&r, IFLA_ADDRESS, a->mac, 6);
	if (a->mtu)
		attr(&r, IFLA_MTU, &a->mtu, 4);
	info = nest(&r, IFLA_LINKINFO);
	attr_str(&r, IFLA_INFO_KIND, "bridge");
	nest_end(&r, info);
	rc = nl_talk(fd, &r, NULL);
	if (rc == -EEXIST)
		created = 0;
	else if (rc < 0)
		goto out;
	index = link_index(fd, a->name);
	if (index < 0) {
		rc = index;
		goto out;
	}
	rc = addr_add(fd, index, a->addr, a->prefix_len);
	if (rc < 0 && rc != -EEXIST)
		goto out;
	rc = link_up(fd, index, NULL);
	if (rc == 0)
		rc = created;
out:
	close(fd);
	return rc;
}

/* Opens a netlink socket inside the namespace of netns_fd; also allows unprivileged ICMP
 * echo sockets there (net.ipv4.ping_group_range, per namespace; podman does the same),
 * since containers do not get CAP_NET_RAW. The thread always comes back. */
static int nl_open_in(int netns_fd, int *stage)
{
	int self, fd, rc, sys;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	*stage = NB_NET_STAGE_SETNS;
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		rc = -errno;
		close(self);
		return rc;
	}
	fd = nl_open();
	sys = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
	if (sys >= 0) {
		static const char all[] = "0 2147483647";
		if (write(sys, all, sizeof(all) - 1) < 0) {
			/* best effort: ping then needs CAP_NET_RAW, as on a host with the default */
		}
		close(sys);
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Cannot happen for a namespace we came from; never leave the thread elsewhere. */
		abort();
	}
	close(self);
	return fd;
}

int nb_net_attach(const struct nb_net_args *a, int32_t *stage)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	/* The peer comes up from inside: IFF_UP here answers ENOTCONN (6.x, before both ends exist). */
	struct ifinfomsg peer = { .ifi_family = AF_UNSPEC };
	struct rtattr *info, *data, *pinfo;
	struct req r;
	char path[64];
	int fd = -1, nsfd = -1, inner = -1, rc, br, eth0;
	uint32_t master, gw = a->gateway;

	*stage = NB_NET_STAGE_ARGS;
	if (!name_ok(a->bridge) || !name_ok(a->host_if) || a->prefix_len == 0 || a->prefix_len > 30 || a->pid <= 0)
		return -EINVAL;
	fd = nl_open();
	if (fd < 0)
		return fd;

	*stage = NB_NET_STAGE_BRIDGE;
	br = link_index(fd, a->bridge);
	if (br < 0) {
		rc = br;
		goto out;
	}
	master = (uint32_t)br;

	*stage = NB_NET_STAGE_NETNS;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", a->pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		rc = -errno;
		goto out;
	}

	/* A host end left by an earlier run of this container (its namespace is torn down
	 * asynchronously by the kernel, or a CLI died): the name is ours, remove it. */
	*stage = NB_NET_STAGE_VETH;
	rc = link_del(fd, a->host_if);
	if (rc < 0 && rc != -ENODEV)
		goto out;

	req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	attr_str(&r, IFLA_IFNAME, a->host_if);
	attr(&r, IFLA_MASTER, &master, 4);
	if (a->mtu)
		attr(&r, IFLA_MTU, &a->mtu, 4);
	info = nest(&r, IFLA_LINKINFO);
	attr_str(&r, IFLA_INFO_KIND, "veth");
	data = nest(&r, IFLA_INFO_DATA);
	pinfo = nest(&r, VETH_INFO_PEER);
	/* The peer's header is an ifinfomsg, then its own attributes (veth.c). */
	{
		uint32_t off = NLMSG_ALIGN(r.h->nlmsg_len);
		memcpy(r.buf + off, &peer, sizeof(peer));
		r.h->nlmsg_len = off + (uint32_t)NLMSG_ALIGN(sizeof(peer));
	}
	attr_str(&r, IFLA_IFNAME, "eth0");
	attr(&r, IFLA_NET_NS_FD, &nsfd, 4);
	if (a->mtu)
		attr(&r, IFLA_MTU, &a->mtu, 4);
	if (!attr(&r, IFLA_ADDRESS, a->mac, 6)) {
		rc = -ENOBUFS;
		goto out;
	}
	nest_end(&r, pinfo);
	nest_end(&r, data);
	nest_end(&r, info);
	rc = nl_talk(fd, &r, NULL);
	if (rc < 0)
		goto out;

	if (a->alias) {
		struct ifinfomsg set = { .ifi_family = AF_UNSPEC };
		req_init(&r, RTM_NEWLINK, 0, &set, sizeof(set));
		attr_str(&r, IFLA_IFNAME, a->host_if);
		attr_str(&r, IFLA_IFALIAS, a->alias);
		rc = nl_talk(fd, &r, NULL);
		if (rc < 0)
			goto out_del;
	}

	inner = nl_open_in(nsfd, stage);
	if (inner < 0) {
		rc = inner;
		goto out_del;
	}
	*stage = NB_NET_STAGE_CONFIG;
	if ((rc = link_up(inner, 1, NULL)) < 0) /* lo is always ifindex 1 in a namespace */
		goto out_del;
	eth0 = link_index(inner, "eth0");
	if (eth0 < 0) {
		rc = eth0;
		goto out_del;
	}
	if ((rc = link_up(inner, eth0, NULL)) < 0 || (rc = addr_add(inner, eth0, a->addr, a->prefix_len)) < 0)
		goto out_del;
	if (gw) {
		struct rtmsg rt = {
			.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
			.rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST,
		};
		uint32_t oif = (uint32_t)eth0;
		req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof(rt));
		attr(&r, RTA_GATEWAY, &gw, 4);
		attr(&r, RTA_OIF, &oif, 4);
		if ((rc = nl_talk(inner, &r, NULL)) < 0)
			goto out_del;
	}
	*stage = 0;
	rc = 0;
	goto out;

out_del:
	link_del(fd, a->host_if); /* takes the peer with it */
out:
	if (inner >= 0)
		close(inner);
	if (nsfd >= 0)
		close(nsfd);
	close(fd);
	return rc;
}
