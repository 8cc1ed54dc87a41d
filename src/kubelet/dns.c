/*
 * dns: the kubelet's cluster DNS responder (dns.h). It listens on each
 * --cluster-dns address, port 53, UDP and TCP. Pods reach that address
 * through their default route: when no interface of the node has it,
 * the kubelet puts it (/32) on a dummy device, coracle-dns, as NodeLocal
 * DNSCache does with 169.254.20.10 (on lo where the kernel has no dummy
 * driver), so one --cluster-dns value serves
 * every node and each node answers its own pods (doc/DESIGN.md). The
 * sockets bind with IP_FREEBIND, so an address that comes later (the
 * bridge's gateway, set up with the first pod) works too.
 *
 * Names under --cluster-domain are answered by dns_msg.c from the
 * kubelet's watch of Services and EndpointSlices (services.c); until
 * both have listed, those queries get SERVFAIL. Everything else goes to
 * the node's nameservers (--resolv-conf) one after the other, 2 s each,
 * over UDP with a fresh socket and a random ID per query, over TCP when
 * the answer came truncated; a client over UDP gets what fits its size.
 * Bounds: 256 queries in flight, 64 TCP clients idle at most 10 s with
 * at most 1 MiB of answers unread, 64 KiB a message; bytes that are no
 * query are answered FORMERR or dropped.
 */
#include "config.h"
#include "dns.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_PORT 53
#define MAX_INFLIGHT 256
#define MAX_CONNS 64
#define IDLE_S 10
#define UPSTREAM_S 2
#define MAX_MSG 65535
#define MAX_OUT (1 << 20) /* answers a TCP client has not read yet */

struct kdns_conn;

/* One query sent on to the node's nameservers. */
struct fwd {
    struct kdns *d;
    struct fwd *prev, *next;
    uint8_t *q;     /* the query, our ID in it */
    uint8_t *cname; /* an ExternalName's CNAME answer the upstream's goes after, or NULL */
    size_t cname_len;
    size_t qlen;
    uint16_t client_id;
    size_t max; /* the client's size */
    /* where the answer goes: a TCP client, or a UDP client through fd */
    struct kdns_conn *conn;
    int ufd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    size_t up;               /* the nameserver asked */
    int sfd;                 /* the UDP socket to it */
    struct event *ev;        /* its read (or timeout) */
    struct bufferevent *tcp; /* or the TCP connection to it */
};

struct kdns_conn {
    struct kdns *d;
    struct kdns_conn *prev, *next;
    struct bufferevent *bev;
};

struct lsock {
    int fd;
    struct event *ev;
};

struct kdns {
    struct klet *k;
    struct kdns_src src;
    struct sockaddr_in *ups; /* the node's nameservers */
    size_t nups;
    struct lsock *udp;
    size_t nudp;
    struct evconnlistener **tcp;
    size_t ntcp;
    struct fwd *fwds;
    size_t nfwd;
    struct kdns_conn *conns;
    size_t nconns;
    bool made_dev;      /* coracle-dns is ours to remove */
    uint32_t *lo_addrs; /* or the addresses we put on lo */
    size_t nlo;
    char *domain; /* --cluster-domain, lower case, no trailing dot */
};

/* A small text file (at most 64 KiB), or NULL (malloc'd). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *t = xmalloc(MAX_MSG + 1);
    size_t n = fread(t, 1, MAX_MSG, f);
    fclose(f);
    t[n] = '\0';
    return t;
}

/* ------------------------------------------------------------ the data */
static const char *label(const Coracle__V1__ObjectMeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (!strcmp(m->labels[i]->key, key))
            return m->labels[i]->value;
    return NULL;
}

static const Coracle__V1__Service *src_service(void *arg, const char *ns, const char *name)
{
    struct klet *k = arg;
    return (const void *)inf_get(k->svc_inf, ns, name);
}

struct slice_walk {
    const char *ns, *name;
    void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg);
    void *fnarg;
};

static int slice_one(const ProtobufCMessage *obj, void *arg)
{
    struct slice_walk *w = arg;
    const Coracle__V1__EndpointSlice *s = (const void *)obj;
    const char *svc = label(s->metadata, "kubernetes.io/service-name");
    if (svc && !strcmp(svc, w->name) && s->metadata->namespace_ &&
        !strcmp(s->metadata->namespace_, w->ns))
        w->fn(s, w->fnarg);
    return 0;
}

static void src_slices(void *arg, const char *ns, const char *name,
                       void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg), void *fnarg)
{
    struct klet *k = arg;
    struct slice_walk w = {ns, name, fn, fnarg};
    inf_foreach(k->slice_inf, slice_one, &w);
}

/* Every object of one informer, to a function of a message type (reverse lookups). */
struct each_walk {
    void (*svc)(const Coracle__V1__Service *s, void *fnarg); /* or: */
    void (*slice)(const Coracle__V1__EndpointSlice *s, void *fnarg);
    void *fnarg;
};

static int each_one(const ProtobufCMessage *obj, void *arg)
{
    struct each_walk *w = arg;
    if (w->svc)
        w->svc((const Coracle__V1__Service *)obj, w->fnarg);
    else
        w->slice((const Coracle__V1__EndpointSlice *)obj, w->fnarg);
    return 0;
}

static void src_each_service(void *arg, void (*fn)(const Coracle__V1__Service *s, void *fnarg),
                             void *fnarg)
{
    struct klet *k = arg;
    struct each_walk w = {fn, NULL, fnarg};
    inf_foreach(k->svc_inf, each_one, &w);
}

static void src_each_slice(void *arg, void (*fn)(const Coracle__V1__EndpointSlice *s, void *fnarg),
                           void *fnarg)
{
    struct klet *k = arg;
    struct each_walk w = {NULL, fn, fnarg};
    inf_foreach(k->slice_inf, each_one, &w);
}

static int ns_match(const ProtobufCMessage *obj, void *arg)
{
    const Coracle__V1__Service *s = (const void *)obj;
    return s->metadata && s->metadata->namespace_ && !strcmp(s->metadata->namespace_, arg);
}

static bool src_namespace_used(void *arg, const char *ns)
{
    struct klet *k = arg;
    return inf_foreach(k->svc_inf, ns_match, (void *)ns) != 0;
}

/* ------------------------------------------------------------ answers out */
static void udp_send(int fd, const struct sockaddr_storage *peer, socklen_t len, const uint8_t *a,
                     size_t alen)
{
    if (sendto(fd, a, alen, MSG_DONTWAIT, (const struct sockaddr *)peer, len) < 0)
        log_debug("dns: answer to a client: %s", strerror(errno));
}

static void tcp_send(struct kdns_conn *c, const uint8_t *a, size_t alen)
{
    uint8_t len[2] = {(uint8_t)(alen >> 8), (uint8_t)alen};
    bufferevent_write(c->bev, len, 2);
    bufferevent_write(c->bev, a, alen);
}

/* ------------------------------------------------------------ forwarding */
static void fwd_free(struct fwd *f)
{
    struct kdns *d = f->d;
    if (f->prev)
        f->prev->next = f->next;
    else
        d->fwds = f->next;
    if (f->next)
        f->next->prev = f->prev;
    d->nfwd--;
    if (f->ev)
        event_free(f->ev);
    if (f->sfd >= 0)
        close(f->sfd);
    if (f->tcp)
        bufferevent_free(f->tcp);
    free(f->q);
    free(f->cname);
    free(f);
}

/* Sends answer a to f's client (as much as a UDP client takes). */
static void fwd_send(struct fwd *f, const uint8_t *a, size_t alen)
{
    if (f->conn) {
        tcp_send(f->conn, a, alen);
    } else if (f->ufd >= 0) {
        uint8_t *out;
        size_t outlen;
        if (kdns_fit(a, alen, f->max, &out, &outlen) == 0) {
            udp_send(f->ufd, &f->peer, f->peer_len, out, outlen);
            free(out);
        }
    }
}

/* Hands the answer a (our ID in it) to the client and ends f. */
static void fwd_done(struct fwd *f, uint8_t *a, size_t alen)
{
    a[0] = (uint8_t)(f->client_id >> 8);
    a[1] = (uint8_t)f->client_id;
    uint8_t *m;
    size_t mlen;
    if (!f->cname) {
        fwd_send(f, a, alen);
    } else if (kdns_merge(f->cname, f->cname_len, a, alen, f->conn ? MAX_MSG : f->max, &m, &mlen) ==
               0) {
        fwd_send(f, m, mlen);
        free(m);
    } else {
        fwd_send(f, f->cname, f->cname_len);
    }
    fwd_free(f);
}

static void fwd_try(struct fwd *f);

/* The asked nameserver failed: the next one, or SERVFAIL when none is left. */
static void fwd_next(struct fwd *f)
{
    if (f->ev) {
        event_free(f->ev);
        f->ev = NULL;
    }
    if (f->sfd >= 0) {
        close(f->sfd);
        f->sfd = -1;
    }
    if (f->tcp) {
        bufferevent_free(f->tcp);
        f->tcp = NULL;
    }
    if (++f->up < f->d->nups) {
        fwd_try(f);
        return;
    }
    uint8_t *a;
    size_t alen;
    if (f->cname) { /* the target did not resolve: the CNAME alone */
        fwd_send(f, f->cname, f->cname_len);
        fwd_free(f);
    } else if (kdns_servfail(f->q, f->qlen, &a, &alen) == 0) {
        fwd_done(f, a, alen);
        free(a);
    } else {
        fwd_free(f);
    }
}

/* The next whole DNS message on a TCP stream (its 2-byte length taken off), or NULL while it
 * is not all in. OUT *len. malloc'd. */
static uint8_t *tcp_msg(struct evbuffer *in, size_t *len)
{
    uint8_t h[2];
    if (evbuffer_copyout(in, h, 2) < 2)
        return NULL;
    *len = (size_t)h[0] << 8 | h[1];
    if (evbuffer_get_length(in) < *len + 2)
        return NULL;
    uint8_t *m = xmalloc(*len + 1);
    evbuffer_drain(in, 2);
    evbuffer_remove(in, m, *len);
    return m;
}

static void tcp_up_read(struct bufferevent *bev, void *arg)
{
    struct fwd *f = arg;
    size_t len;
    uint8_t *a = tcp_msg(bufferevent_get_input(bev), &len);
    if (!a)
        return;
    if (len < 12 || a[0] != f->q[0] || a[1] != f->q[1])
        fwd_next(f);
    else
        fwd_done(f, a, len);
    free(a);
}

static void tcp_up_event(struct bufferevent *bev, short what, void *arg)
{
    struct fwd *f = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    fwd_next(f); /* error, EOF or timeout */
}

/* Asks the nameserver again over TCP (its UDP answer was truncated). */
static void fwd_tcp(struct fwd *f)
{
    struct kdns *d = f->d;
    event_free(f->ev);
    f->ev = NULL;
    close(f->sfd);
    f->sfd = -1;
    f->tcp = bufferevent_socket_new(d->k->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->tcp, tcp_up_read, NULL, tcp_up_event, f);
    struct timeval tv = {UPSTREAM_S, 0};
    bufferevent_set_timeouts(f->tcp, &tv, &tv);
    bufferevent_enable(f->tcp, EV_READ | EV_WRITE);
    uint8_t len[2] = {(uint8_t)(f->qlen >> 8), (uint8_t)f->qlen};
    bufferevent_write(f->tcp, len, 2);
    bufferevent_write(f->tcp, f->q, f->qlen);
    if (bufferevent_socket_connect(f->tcp, (struct sockaddr *)&d->ups[f->up], sizeof d->ups[0]) < 0)
        fwd_next(f);
}

static void udp_up_read(evutil_socket_t fd, short what, void *arg)
{
    struct fwd *f = arg;
    if (what & EV_TIMEOUT) {
        fwd_next(f);
        return;
    }
    uint8_t buf[MAX_MSG];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        fwd_next(f); /* ECONNREFUSED: nobody there */
        return;
    }
    if (n < 12 || buf[0] != f->q[0] || buf[1] != f->q[1] || !(buf[2] & 0x80))
        return; /* not the answer: keep waiting */
    if (buf[2] & 0x02) {
        fwd_tcp(f);
        return;
    }
    fwd_done(f, buf, (size_t)n);
}

/* Sends the query to nameserver f->up over UDP. */
static void fwd_try(struct fwd *f)
{
    struct kdns *d = f->d;
    f->sfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->sfd < 0 || connect(f->sfd, (struct sockaddr *)&d->ups[f->up], sizeof d->ups[0]) < 0 ||
        send(f->sfd, f->q, f->qlen, MSG_DONTWAIT) < 0) {
        fwd_next(f);
        return;
    }
    f->ev = event_new(d->k->base, f->sfd, EV_READ | EV_PERSIST, udp_up_read, f);
    struct timeval tv = {UPSTREAM_S, 0};
    event_add(f->ev, &tv);
}

/* Where an answer goes back to. */
struct origin {
    struct kdns_conn *conn; /* TCP; else UDP: */
    int fd;
    const struct sockaddr_storage *peer;
    socklen_t peer_len;
};

static void reply(const struct origin *o, const uint8_t *a, size_t alen)
{
    if (o->conn)
        tcp_send(o->conn, a, alen);
    else
        udp_send(o->fd, o->peer, o->peer_len, a, alen);
}

/* Sends q on to the node's nameservers; cname: an answer that goes first (see kdns_chase). */
static void forward(struct kdns *d, const uint8_t *q, size_t qlen, size_t max,
                    const struct origin *o, const uint8_t *cname, size_t cname_len)
{
    if (cname && (!d->nups || d->nfwd >= MAX_INFLIGHT)) {
        reply(o, cname, cname_len);
        return;
    }
    if (!d->nups || d->nfwd >= MAX_INFLIGHT) {
        uint8_t *a;
        size_t alen;
        if (kdns_servfail(q, qlen, &a, &alen) == 0) {
            reply(o, a, alen);
            free(a);
        }
        return;
    }
    struct fwd *f = xcalloc(1, sizeof *f);
    f->d = d;
    f->q = xmalloc(qlen);
    memcpy(f->q, q, qlen);
    f->qlen = qlen;
    f->client_id = (uint16_t)(q[0] << 8 | q[1]);
    uint16_t id;
    if (getrandom(&id, sizeof id, 0) == sizeof id)
        memcpy(f->q, &id, 2);
    f->max = max;
    f->conn = o->conn;
    f->ufd = o->conn ? -1 : o->fd;
    if (!o->conn) {
        memcpy(&f->peer, o->peer, o->peer_len);
        f->peer_len = o->peer_len;
    }
    f->sfd = -1;
    if (cname) {
        f->cname = xmalloc(cname_len);
        memcpy(f->cname, cname, cname_len);
        f->cname_len = cname_len;
    }
    f->next = d->fwds;
    if (d->fwds)
        d->fwds->prev = f;
    d->fwds = f;
    d->nfwd++;
    fwd_try(f);
}

/* ------------------------------------------------------------ queries in */
/* Sends answer a, or first asks for the outside target of an ExternalName's CNAME in it. */
static void chase_or_reply(struct kdns *d, const uint8_t *q, size_t qlen, size_t max,
                           const struct origin *o, const uint8_t *a, size_t alen)
{
    char *target = kdns_chase(&d->src, a, alen);
    uint8_t *tq;
    size_t tqlen;
    if (target && kdns_query(q, qlen, target, &tq, &tqlen) == 0) {
        forward(d, tq, tqlen, max, o, a, alen);
        free(tq);
    } else {
        reply(o, a, alen);
    }
    free(target);
}

static void handle(struct kdns *d, const uint8_t *q, size_t qlen, const struct origin *o)
{
    d->src.serial = d->k->svc_serial;
    d->src.ready = inf_synced(d->k->svc_inf) && inf_synced(d->k->slice_inf);
    size_t max = o->conn ? MAX_MSG : kdns_udp_max(q, qlen);
    uint8_t *a = NULL;
    size_t alen = 0;
    switch (kdns_answer(&d->src, q, qlen, max, &a, &alen)) {
    case KDNS_ANSWER:
        chase_or_reply(d, q, qlen, max, o, a, alen);
        break;
    case KDNS_FORWARD:
        forward(d, q, qlen, max, o, NULL, 0);
        break;
    case KDNS_DROP:
        break;
    }
    free(a);
}

static void udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct kdns *d = arg;
    uint8_t buf[4096];
    for (int i = 0; i < 64; i++) { /* a bounded batch, then the loop's other work */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&peer, &plen);
        if (n < 0)
            return;
        if ((size_t)n > sizeof buf)
            continue; /* a query that big is no query */
        struct origin o = {NULL, fd, &peer, plen};
        handle(d, buf, (size_t)n, &o);
    }
}

static void conn_free(struct kdns_conn *c)
{
    struct kdns *d = c->d;
    for (struct fwd *f = d->fwds; f; f = f->next)
        if (f->conn == c)
            f->conn = NULL; /* the answer has nowhere to go: dropped when it comes */
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    struct kdns_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) > MAX_OUT) {
            conn_free(c); /* asks and never reads its answers */
            return;
        }
        size_t len;
        uint8_t *q = tcp_msg(in, &len);
        if (!q)
            return;
        struct origin o = {c, -1, NULL, 0};
        handle(c->d, q, len, &o);
        free(q);
    }
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    conn_free(arg); /* EOF, error or idle */
}

static void conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    struct kdns *d = arg;
    if (d->nconns >= MAX_CONNS) {
        close(fd);
        return;
    }
    struct kdns_conn *c = xcalloc(1, sizeof *c);
    c->d = d;
    c->bev = bufferevent_socket_new(d->k->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    struct timeval tv = {IDLE_S, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
}

/* ------------------------------------------------------------ sockets */
static int bound_socket(int type, const struct sockaddr_in *sa, char **err)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 ||
        (type == SOCK_STREAM && listen(fd, 64) < 0)) {
        *err = xasprintf("cluster DNS: %s %s:%d: %s", type == SOCK_STREAM ? "TCP" : "UDP", ip,
                         ntohs(sa->sin_port), strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Puts ip on coracle-dns (on lo where the kernel has no dummy driver) unless an interface of
 * the node has it already. */
static int address_local(struct kdns *d, struct in_addr ip, char **err)
{
    uint32_t gw;
    int oif;
    bool local = false;
    char *e = NULL;
    if (klet_nl_route_lookup(ip.s_addr, &gw, &oif, &local, &e) == 0 && local)
        return 0;
    free(e);
    int ifindex;
    if (klet_nl_dummy(KDNS_DEVICE, &ifindex, err) == 0) {
        d->made_dev = true;
        return klet_nl_link_up(ifindex, err) < 0 ? -1 : klet_nl_addr(ifindex, ip.s_addr, 32, err);
    }
    if (errno != EOPNOTSUPP)
        return -1;
    free(*err);
    *err = NULL;
    ifindex = (int)if_nametoindex("lo");
    if (!ifindex || klet_nl_addr(ifindex, ip.s_addr, 32, err) < 0)
        return -1;
    d->lo_addrs = xrealloc(d->lo_addrs, (d->nlo + 1) * sizeof *d->lo_addrs);
    d->lo_addrs[d->nlo++] = ip.s_addr;
    return 0;
}

static int listen_on(struct kdns *d, const char *addr, char **err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(DNS_PORT)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        log_warn("cluster DNS: --cluster-dns %s is not an IPv4 address: not answered here", addr);
        return 0;
    }
    if (address_local(d, sa.sin_addr, err) < 0)
        return -1;
    int ufd = bound_socket(SOCK_DGRAM, &sa, err);
    if (ufd < 0)
        return -1;
    int tfd = bound_socket(SOCK_STREAM, &sa, err);
    if (tfd < 0) {
        close(ufd);
        return -1;
    }
    d->udp = xrealloc(d->udp, (d->nudp + 1) * sizeof *d->udp);
    d->udp[d->nudp].fd = ufd;
    d->udp[d->nudp].ev = event_new(d->k->base, ufd, EV_READ | EV_PERSIST, udp_read, d);
    event_add(d->udp[d->nudp++].ev, NULL);
    d->tcp = xrealloc(d->tcp, (d->ntcp + 1) * sizeof *d->tcp);
    d->tcp[d->ntcp++] = evconnlistener_new(d->k->base, conn_accept, d,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, tfd);
    return 0;
}

/* Whether ip is one of the comma list's addresses. */
static bool is_cluster_dns(const char *list, const char *ip)
{
    size_t n = strlen(ip);
    for (const char *p = list; (p = strstr(p, ip)); p += n)
        if ((p == list || p[-1] == ',' || p[-1] == ' ') && (!p[n] || p[n] == ',' || p[n] == ' '))
            return true;
    return false;
}

/* The node's nameservers to forward to: IPv4 ones that are not the cluster DNS itself. */
static void upstreams(struct kdns *d)
{
    const char *path = d->k->cfg.resolv_conf;
    char *text = path && *path ? slurp(path) : NULL;
    struct kdns_resolv r;
    kdns_resolv_parse(text, &r);
    free(text);
    for (size_t i = 0; i < r.nservers; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(DNS_PORT)};
        if (inet_pton(AF_INET, r.servers[i], &sa.sin_addr) != 1 ||
            is_cluster_dns(d->k->cfg.cluster_dns, r.servers[i]))
            continue;
        d->ups = xrealloc(d->ups, (d->nups + 1) * sizeof *d->ups);
        d->ups[d->nups++] = sa;
    }
    if (!d->nups)
        log_warn("cluster DNS: no IPv4 nameserver in %s: other names get SERVFAIL",
                 path && *path ? path : "(--resolv-conf \"\")");
    kdns_resolv_free(&r);
}

int klet_dns_start(struct klet *k, char **err)
{
    struct kdns *d = xcalloc(1, sizeof *d);
    d->k = k;
    d->domain = xstrdup(k->cfg.cluster_domain);
    for (char *c = d->domain; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    size_t dl = strlen(d->domain);
    if (dl && d->domain[dl - 1] == '.')
        d->domain[dl - 1] = '\0';
    d->src = (struct kdns_src){
        .domain = d->domain,
        .service = src_service,
        .slices = src_slices,
        .namespace_used = src_namespace_used,
        .arg = k,
        .each_service = src_each_service,
        .each_slice = src_each_slice,
    };
    k->dns = d;
    upstreams(d);
    char *list = xstrdup(k->cfg.cluster_dns), *save = NULL;
    int rc = 0;
    for (char *a = strtok_r(list, ", ", &save); a && rc == 0; a = strtok_r(NULL, ", ", &save))
        rc = listen_on(d, a, err);
    free(list);
    if (rc < 0) {
        klet_dns_stop(k);
        return -1;
    }
    log_info("cluster DNS: %s port %d, domain %s, %zu upstream nameserver(s)", k->cfg.cluster_dns,
             DNS_PORT, k->cfg.cluster_domain, d->nups);
    return 0;
}

static void del_lo_addr(uint32_t ip);

void klet_dns_stop(struct klet *k)
{
    struct kdns *d = k->dns;
    if (!d)
        return;
    while (d->fwds)
        fwd_free(d->fwds);
    while (d->conns)
        conn_free(d->conns);
    for (size_t i = 0; i < d->nudp; i++) {
        event_free(d->udp[i].ev);
        close(d->udp[i].fd);
    }
    for (size_t i = 0; i < d->ntcp; i++)
        if (d->tcp[i])
            evconnlistener_free(d->tcp[i]);
    if (d->made_dev)
        klet_dns_cleanup(NULL);
    for (size_t i = 0; i < d->nlo; i++)
        del_lo_addr(d->lo_addrs[i]);
    free(d->lo_addrs);
    free(d->udp);
    free(d->tcp);
    free(d->ups);
    free(d->domain);
    free(d);
    k->dns = NULL;
}

static void del_lo_addr(uint32_t ip)
{
    char *e = NULL;
    if (klet_nl_addr_set(false, (int)if_nametoindex("lo"), ip, 32, &e) < 0) {
        log_warn("cluster DNS: %s", e);
        free(e);
    }
}

void klet_dns_cleanup(const char *cluster_dns)
{
    char *err = NULL;
    if (klet_nl_link_del(KDNS_DEVICE, &err) < 0) {
        log_warn("cluster DNS: %s", err);
        free(err);
    }
    char *list = xstrdup(cluster_dns ? cluster_dns : ""), *save = NULL;
    for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
        struct in_addr ip;
        if (inet_pton(AF_INET, a, &ip) == 1)
            del_lo_addr(ip.s_addr);
    }
    free(list);
}

/* ------------------------------------------------------------ pods' resolv.conf */
struct pod_warn {
    struct klet *k;
    struct klet_pod *p;
};

static void pod_warn(void *arg, const char *reason, const char *msg)
{
    struct pod_warn *w = arg;
    if (!strcmp(reason, "MissingClusterDNS")) {
        /* on the Node, once a run: a kubelet without --cluster-dns is a choice of its
         * operator, and pods' own events stay those of their containers */
        if (!w->k->dns_warned)
            klet_event_node(w->k, "Warning", reason, "%s", msg);
        w->k->dns_warned = true;
        return;
    }
    klet_event(w->k, w->p, NULL, "Warning", reason, "%s", msg);
}

#define SYSTEMD_RESOLV "/run/systemd/resolve/resolv.conf"

void klet_dns_pod_files(struct klet *k, struct klet_pod *p, const char *dir)
{
    const Coracle__V1__PodSpec *sp = p->pod->spec;
    bool hostnet = sp->has_hostnetwork && sp->hostnetwork;
    const char *path = k->cfg.resolv_conf;
    struct kdns_resolv host;
    char *text = path && *path ? slurp(path) : NULL;
    kdns_resolv_parse(text, &host);
    free(text);
    /* systemd-resolved's stub (127.0.0.53) is not reachable from a pod's own network: its
     * upstream list is, as kubeadm points --resolv-conf there on such hosts */
    if (!hostnet && host.nservers == 1 && !strcmp(host.servers[0], "127.0.0.53") &&
        (text = slurp(SYSTEMD_RESOLV))) {
        kdns_resolv_free(&host);
        kdns_resolv_parse(text, &host);
        free(text);
    }
    struct pod_warn w = {k, p};
    struct kdns_pod_in in = {
        .ns = p->ns,
        .policy = sp->dnspolicy,
        .hostnet = hostnet,
        .cfg = sp->dnsconfig,
        .cluster_dns = k->cfg.cluster_dns,
        .domain = k->cfg.cluster_domain,
        .host = path && *path ? &host : NULL,
        .warn = pod_warn,
        .warn_arg = &w,
    };
    char *conf = kdns_pod_resolv(&in);
    char *file = xasprintf("%s/resolv.conf", dir);
    FILE *f = fopen(file, "w"); /* in place: containers bind-mount this inode */
    bool ok = f && fputs(conf, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        log_warn("pod %s/%s: writing %s: %s", p->ns, p->name, file, strerror(errno));
    free(file);
    free(conf);
    kdns_resolv_free(&host);
}
