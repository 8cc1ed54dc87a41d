/*
 * print: tables, ages and pod status as kubectl prints them. See print.h.
 * The algorithms follow Go's text/tabwriter, apimachinery's
 * duration.HumanDuration and kubectl's printPod/printNode/printEvent.
 */
#include "config.h"
#include "print.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* ------------------------------------------------------------ tabwriter */

void ctl_tw_init(struct ctl_tw *tw, int minwidth, int padding, bool remember)
{
    memset(tw, 0, sizeof(*tw));
    tw->minwidth = minwidth;
    tw->padding = padding;
    tw->remember = remember;
}

void ctl_tw_printf(struct ctl_tw *tw, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&tw->text, fmt, ap);
    va_end(ap);
}

void ctl_tw_free(struct ctl_tw *tw)
{
    buf_free(&tw->text);
    free(tw->widths);
    tw->widths = NULL;
    tw->nwidths = 0;
}

struct twcell {
    const char *p;
    size_t len, width;
};
struct twline {
    struct twcell *c;
    size_t n;
};

static size_t utf8_width(const char *p, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            w++;
    return w;
}

struct twstate {
    struct ctl_tw *tw;
    struct twline *lines;
    size_t *widths; /* stack */
    size_t nwidths;
    struct buf *out;
};

static void tw_write_lines(struct twstate *s, size_t line0, size_t line1)
{
    for (size_t i = line0; i < line1; i++) {
        struct twline *l = &s->lines[i];
        for (size_t j = 0; j < l->n; j++) {
            buf_add(s->out, l->c[j].p, l->c[j].len);
            if (j < s->nwidths && j + 1 < l->n) {
                for (size_t k = l->c[j].width; k < s->widths[j]; k++)
                    buf_add(s->out, " ", 1);
            }
        }
        buf_add(s->out, "\n", 1);
    }
}

static void tw_format(struct twstate *s, size_t line0, size_t line1)
{
    size_t column = s->nwidths;
    for (size_t this = line0; this < line1; this ++) {
        if (column + 1 >= s->lines[this].n)
            continue;
        tw_write_lines(s, line0, this);
        line0 = this;
        size_t width = (size_t)s->tw->minwidth;
        for (; this < line1; this ++) {
            struct twline *l = &s->lines[this];
            if (column + 1 >= l->n)
                break;
            size_t w = l->c[column].width + (size_t)s->tw->padding;
            if (w > width)
                width = w;
        }
        if (s->tw->remember) {
            if (column >= s->tw->nwidths) {
                s->tw->widths = xrealloc(s->tw->widths, (column + 1) * sizeof(size_t));
                for (size_t k = s->tw->nwidths; k <= column; k++)
                    s->tw->widths[k] = 0;
                s->tw->nwidths = column + 1;
            }
            if (s->tw->widths[column] > width)
                width = s->tw->widths[column];
            else
                s->tw->widths[column] = width;
        }
        s->widths[s->nwidths++] = width;
        tw_format(s, line0, this);
        s->nwidths--;
        line0 = this;
    }
    tw_write_lines(s, line0, line1);
}

void ctl_tw_flush(struct ctl_tw *tw, struct buf *out)
{
    if (!tw->text.len)
        return;
    /* split into lines of cells */
    char *text = tw->text.p;
    size_t len = tw->text.len;
    if (text[len - 1] == '\n')
        len--; /* the final newline ends the last line */
    size_t nlines = 1, maxcells = 1;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n')
            nlines++;
    struct twline *lines = xcalloc(nlines, sizeof(*lines));
    size_t li = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n')
            continue;
        struct twline *l = &lines[li++];
        size_t ncells = 1;
        for (size_t k = start; k < i; k++)
            ncells += text[k] == '\t';
        l->c = xcalloc(ncells, sizeof(*l->c));
        size_t cs = start;
        for (size_t k = start; k <= i; k++) {
            if (k < i && text[k] != '\t')
                continue;
            struct twcell *c = &l->c[l->n++];
            c->p = text + cs;
            c->len = k - cs;
            c->width = utf8_width(c->p, c->len);
            cs = k + 1;
        }
        if (l->n > maxcells)
            maxcells = l->n;
        start = i + 1;
    }
    struct twstate s = {tw, lines, xcalloc(maxcells + 1, sizeof(size_t)), 0, out};
    tw_format(&s, 0, nlines);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i].c);
    free(lines);
    free(s.widths);
    tw->text.len = 0;
    tw->text.p[0] = '\0';
}

/* ------------------------------------------------------------- time */

void ctl_human_duration(char *buf, size_t n, int64_t d_ns)
{
    int64_t seconds = d_ns / 1000000000LL;
    if (seconds < -1) {
        snprintf(buf, n, "<invalid>");
        return;
    }
    if (seconds < 0) {
        snprintf(buf, n, "0s");
        return;
    }
    if (seconds < 60 * 2) {
        snprintf(buf, n, "%" PRId64 "s", seconds);
        return;
    }
    int64_t minutes = seconds / 60;
    if (minutes < 10) {
        int64_t s = seconds % 60;
        if (s == 0)
            snprintf(buf, n, "%" PRId64 "m", minutes);
        else
            snprintf(buf, n, "%" PRId64 "m%" PRId64 "s", minutes, s);
        return;
    }
    if (minutes < 60 * 3) {
        snprintf(buf, n, "%" PRId64 "m", minutes);
        return;
    }
    int64_t hours = seconds / 3600;
    if (hours < 8) {
        int64_t m = minutes % 60;
        if (m == 0)
            snprintf(buf, n, "%" PRId64 "h", hours);
        else
            snprintf(buf, n, "%" PRId64 "h%" PRId64 "m", hours, m);
    } else if (hours < 48) {
        snprintf(buf, n, "%" PRId64 "h", hours);
    } else if (hours < 24 * 8) {
        int64_t h = hours % 24;
        if (h == 0)
            snprintf(buf, n, "%" PRId64 "d", hours / 24);
        else
            snprintf(buf, n, "%" PRId64 "d%" PRId64 "h", hours / 24, h);
    } else if (hours < 24 * 365 * 2) {
        snprintf(buf, n, "%" PRId64 "d", hours / 24);
    } else if (hours < 24 * 365 * 8) {
        int64_t dy = (hours / 24) % 365;
        if (dy == 0)
            snprintf(buf, n, "%" PRId64 "y", hours / 24 / 365);
        else
            snprintf(buf, n, "%" PRId64 "y%" PRId64 "d", hours / 24 / 365, dy);
    } else {
        snprintf(buf, n, "%" PRId64 "y", hours / 24 / 365);
    }
}

void ctl_age(char *buf, size_t n, const Coracle__V1__Time *t, int64_t now_ns)
{
    if (!t || (!t->seconds && !t->nanos)) {
        snprintf(buf, n, "<unknown>");
        return;
    }
    ctl_human_duration(buf, n, now_ns - (t->seconds * 1000000000LL + t->nanos));
}

void ctl_fmt_rfc1123z(char *buf, size_t n, int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* ------------------------------------------------------------ pods */

const char *ctl_map_get(Coracle__V1__ObjectMeta__LabelsEntry **v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->key && !strcmp(v[i]->key, key))
            return v[i]->value ? v[i]->value : "";
    return NULL;
}

static int64_t time_sec(const Coracle__V1__Time *t)
{
    return t ? t->seconds : 0;
}

static int has_condition(const Coracle__V1__PodStatus *st, const char *type, const char *status)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return st->conditions[i]->status && !strcmp(st->conditions[i]->status, status);
    return 0;
}

void ctl_pod_summary(const Coracle__V1__Pod *pod, struct ctl_pod_summary *s)
{
    const Coracle__V1__PodSpec *spec = pod->spec;
    const Coracle__V1__PodStatus *st = pod->status;
    const Coracle__V1__ObjectMeta *md = pod->metadata;
    memset(s, 0, sizeof(*s));
    s->total = spec ? (int)spec->n_containers : 0;
    const char *phase = st && st->phase ? st->phase : "";
    snprintf(s->status, sizeof(s->status), "%s", phase);
    if (st && st->reason && *st->reason)
        snprintf(s->status, sizeof(s->status), "%s", st->reason);
    for (size_t i = 0; st && i < st->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = st->conditions[i];
        if (c->type && !strcmp(c->type, "PodScheduled") && c->reason &&
            !strcmp(c->reason, "SchedulingGated"))
            snprintf(s->status, sizeof(s->status), "SchedulingGated");
    }

    int initializing = 0;
    for (size_t i = 0; st && i < st->n_initcontainerstatuses; i++) {
        const Coracle__V1__ContainerStatus *cs = st->initcontainerstatuses[i];
        const Coracle__V1__ContainerState *state = cs->state;
        s->restarts += cs->restartcount;
        if (cs->laststate && cs->laststate->terminated &&
            time_sec(cs->laststate->terminated->finishedat) > s->last_restart_sec)
            s->last_restart_sec = time_sec(cs->laststate->terminated->finishedat);
        const Coracle__V1__ContainerStateTerminated *t = state ? state->terminated : NULL;
        const Coracle__V1__ContainerStateWaiting *w = state ? state->waiting : NULL;
        if (t && t->exitcode == 0)
            continue;
        if (t) {
            if (!t->reason || !*t->reason) {
                if (t->signal != 0)
                    snprintf(s->status, sizeof(s->status), "Init:Signal:%d", t->signal);
                else
                    snprintf(s->status, sizeof(s->status), "Init:ExitCode:%d", t->exitcode);
            } else
                snprintf(s->status, sizeof(s->status), "Init:%s", t->reason);
        } else if (w && w->reason && *w->reason && strcmp(w->reason, "PodInitializing")) {
            snprintf(s->status, sizeof(s->status), "Init:%s", w->reason);
        } else {
            snprintf(s->status, sizeof(s->status), "Init:%zu/%zu", i,
                     spec ? spec->n_initcontainers : 0);
        }
        initializing = 1;
        break;
    }
    if (!initializing || has_condition(st, "Initialized", "True")) {
        s->restarts = 0;
        s->last_restart_sec = 0;
        int has_running = 0;
        for (size_t k = st ? st->n_containerstatuses : 0; k-- > 0;) {
            const Coracle__V1__ContainerStatus *cs = st->containerstatuses[k];
            const Coracle__V1__ContainerState *state = cs->state;
            s->restarts += cs->restartcount;
            if (cs->laststate && cs->laststate->terminated &&
                time_sec(cs->laststate->terminated->finishedat) > s->last_restart_sec)
                s->last_restart_sec = time_sec(cs->laststate->terminated->finishedat);
            const Coracle__V1__ContainerStateTerminated *t = state ? state->terminated : NULL;
            const Coracle__V1__ContainerStateWaiting *w = state ? state->waiting : NULL;
            if (w && w->reason && *w->reason)
                snprintf(s->status, sizeof(s->status), "%s", w->reason);
            else if (t && t->reason && *t->reason)
                snprintf(s->status, sizeof(s->status), "%s", t->reason);
            else if (t) {
                if (t->signal != 0)
                    snprintf(s->status, sizeof(s->status), "Signal:%d", t->signal);
                else
                    snprintf(s->status, sizeof(s->status), "ExitCode:%d", t->exitcode);
            } else if (cs->ready && state && state->running) {
                has_running = 1;
                s->ready++;
            }
        }
        if (!strcmp(s->status, "Completed") && has_running)
            snprintf(s->status, sizeof(s->status), "%s",
                     has_condition(st, "Ready", "True") ? "Running" : "NotReady");
    }
    if (md && md->deletiontimestamp && st && st->reason && !strcmp(st->reason, "NodeLost"))
        snprintf(s->status, sizeof(s->status), "Unknown");
    else if (md && md->deletiontimestamp && strcmp(phase, "Succeeded") && strcmp(phase, "Failed"))
        snprintf(s->status, sizeof(s->status), "Terminating");
}

void ctl_pod_restarts(char *buf, size_t n, const struct ctl_pod_summary *s, int64_t now_ns)
{
    if (s->restarts != 0 && s->last_restart_sec) {
        char age[32];
        ctl_human_duration(age, sizeof(age), now_ns - s->last_restart_sec * 1000000000LL);
        snprintf(buf, n, "%d (%s ago)", s->restarts, age);
    } else
        snprintf(buf, n, "%d", s->restarts);
}

/* ----------------------------------------------------------- nodes */

void ctl_node_status(char *buf, size_t n, const Coracle__V1__Node *node)
{
    const char *st = NULL;
    const Coracle__V1__NodeStatus *ns = node->status;
    for (size_t i = 0; ns && i < ns->n_conditions; i++)
        if (ns->conditions[i]->type && !strcmp(ns->conditions[i]->type, "Ready"))
            st = ns->conditions[i]->status && !strcmp(ns->conditions[i]->status, "True")
                     ? "Ready"
                     : "NotReady";
    snprintf(buf, n, "%s%s", st ? st : "Unknown",
             node->spec && node->spec->unschedulable ? ",SchedulingDisabled" : "");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *ctl_node_roles(const Coracle__V1__Node *node)
{
    const Coracle__V1__ObjectMeta *md = node->metadata;
    size_t n = md ? md->n_labels : 0, nr = 0;
    const char **roles = xcalloc(n + 1, sizeof(*roles));
    static const char pfx[] = "node-role.kubernetes.io/";
    for (size_t i = 0; i < n; i++) {
        const char *k = md->labels[i]->key, *v = md->labels[i]->value;
        const char *r = NULL;
        if (k && !strncmp(k, pfx, sizeof(pfx) - 1) && k[sizeof(pfx) - 1])
            r = k + sizeof(pfx) - 1;
        else if (k && !strcmp(k, "kubernetes.io/role") && v && *v)
            r = v;
        if (!r)
            continue;
        int dup = 0;
        for (size_t j = 0; j < nr; j++)
            dup |= !strcmp(roles[j], r);
        if (!dup)
            roles[nr++] = r;
    }
    qsort(roles, nr, sizeof(*roles), cmp_str);
    struct buf b = {0};
    for (size_t i = 0; i < nr; i++)
        buf_printf(&b, "%s%s", i ? "," : "", roles[i]);
    free(roles);
    if (!nr)
        buf_puts(&b, "<none>");
    return buf_take(&b);
}

static const char *node_address(const Coracle__V1__Node *node, const char *type)
{
    for (size_t i = 0; node->status && i < node->status->n_addresses; i++)
        if (node->status->addresses[i]->type && !strcmp(node->status->addresses[i]->type, type))
            return node->status->addresses[i]->address ? node->status->addresses[i]->address
                                                       : "<none>";
    return "<none>";
}

static const char *or_str(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* ---------------------------------------------------------- tables */

void ctl_print_header(struct ctl_tw *tw, const struct kind *k, const struct ctl_print_opts *o)
{
    if (o->no_headers)
        return;
    if (o->all_ns && k->namespaced)
        ctl_tw_printf(tw, "NAMESPACE\t");
    if (k == &kind_pod) {
        ctl_tw_printf(tw, "NAME\tREADY\tSTATUS\tRESTARTS\tAGE");
        if (o->wide)
            ctl_tw_printf(tw, "\tIP\tNODE\tNOMINATED NODE\tREADINESS GATES");
    } else if (k == &kind_node) {
        ctl_tw_printf(tw, "NAME\tSTATUS\tROLES\tAGE\tVERSION");
        if (o->wide)
            ctl_tw_printf(
                tw, "\tINTERNAL-IP\tEXTERNAL-IP\tOS-IMAGE\tKERNEL-VERSION\tCONTAINER-RUNTIME");
    } else if (k == &kind_event) {
        if (o->wide)
            ctl_tw_printf(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tSUBOBJECT\tSOURCE\tMESSAGE\t"
                              "FIRST SEEN\tCOUNT\tNAME");
        else
            ctl_tw_printf(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE");
    } else if (k == &kind_lease) {
        ctl_tw_printf(tw, "NAME\tHOLDER\tAGE");
    } else {
        ctl_tw_printf(tw, "NAME\tAGE");
    }
    if (o->show_labels)
        ctl_tw_printf(tw, "\tLABELS");
    ctl_tw_printf(tw, "\n");
}

static int cmp_label(const void *a, const void *b)
{
    const Coracle__V1__ObjectMeta__LabelsEntry *x =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)a;
    const Coracle__V1__ObjectMeta__LabelsEntry *y =
        *(Coracle__V1__ObjectMeta__LabelsEntry *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

/* labels.FormatLabels: "a=b,c=d" sorted by key, "<none>" if empty. */
static void print_labels(struct ctl_tw *tw, const Coracle__V1__ObjectMeta *md)
{
    size_t n = md ? md->n_labels : 0;
    Coracle__V1__ObjectMeta__LabelsEntry **v = xcalloc(n + 1, sizeof(*v));
    if (n)
        memcpy(v, md->labels, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_label);
    ctl_tw_printf(tw, "\t");
    for (size_t i = 0; i < n; i++)
        ctl_tw_printf(tw, "%s%s=%s", i ? "," : "", v[i]->key ? v[i]->key : "",
                      v[i]->value ? v[i]->value : "");
    if (!n)
        ctl_tw_printf(tw, "<none>");
    free(v);
}

static void lower(char *dst, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        dst[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    dst[i] = '\0';
}

/* strings.TrimSpace, and tabs/newlines would break the table. */
static char *trim_msg(const char *m)
{
    if (!m)
        return xstrdup("");
    while (*m == ' ' || *m == '\n' || *m == '\t' || *m == '\r')
        m++;
    char *r = xstrdup(m);
    size_t n = strlen(r);
    while (n && (r[n - 1] == ' ' || r[n - 1] == '\n' || r[n - 1] == '\t' || r[n - 1] == '\r'))
        r[--n] = '\0';
    for (char *p = r; *p; p++)
        if (*p == '\t')
            *p = ' ';
    return r;
}

static void print_event_row(struct ctl_tw *tw, const Coracle__V1__Event *e,
                            const struct ctl_print_opts *o)
{
    char first[32], last[32], target[300], kind[64];
    if (e->firsttimestamp && e->firsttimestamp->seconds)
        ctl_age(first, sizeof(first), e->firsttimestamp, o->now_ns);
    else
        ctl_age(first, sizeof(first), (const Coracle__V1__Time *)e->eventtime, o->now_ns);
    if (e->lasttimestamp && e->lasttimestamp->seconds)
        ctl_age(last, sizeof(last), e->lasttimestamp, o->now_ns);
    else
        snprintf(last, sizeof(last), "%s", first);
    int count = e->count ? e->count : 1;
    const Coracle__V1__ObjectReference *io = e->involvedobject;
    lower(kind, sizeof(kind), io ? io->kind : "");
    if (io && io->name && *io->name)
        snprintf(target, sizeof(target), "%s/%s", kind, io->name);
    else
        snprintf(target, sizeof(target), "%s", kind);
    char *msg = trim_msg(e->message);
    if (o->wide) {
        const char *comp = e->source && e->source->component && *e->source->component
                               ? e->source->component
                               : or_str(e->reportingcomponent, "");
        char source[300];
        if (e->source && e->source->host && *e->source->host)
            snprintf(source, sizeof(source), "%s, %s", comp, e->source->host);
        else
            snprintf(source, sizeof(source), "%s", comp);
        ctl_tw_printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", last, or_str(e->type, ""),
                      or_str(e->reason, ""), target, io ? or_str(io->fieldpath, "") : "", source,
                      msg, first, count, e->metadata ? or_str(e->metadata->name, "") : "");
    } else {
        ctl_tw_printf(tw, "%s\t%s\t%s\t%s\t%s", last, or_str(e->type, ""), or_str(e->reason, ""),
                      target, msg);
    }
    free(msg);
}

void ctl_print_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                   const struct ctl_print_opts *o)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    const char *name = md && md->name ? md->name : "";
    char age[32];
    ctl_age(age, sizeof(age), md ? md->creationtimestamp : NULL, o->now_ns);
    if (o->all_ns && k->namespaced)
        ctl_tw_printf(tw, "%s\t", md && md->namespace_ ? md->namespace_ : "");
    if (k == &kind_pod) {
        const Coracle__V1__Pod *pod = (const Coracle__V1__Pod *)obj;
        struct ctl_pod_summary s;
        char restarts[64];
        ctl_pod_summary(pod, &s);
        ctl_pod_restarts(restarts, sizeof(restarts), &s, o->now_ns);
        ctl_tw_printf(tw, "%s\t%d/%d\t%s\t%s\t%s", name, s.ready, s.total, s.status, restarts, age);
        if (o->wide) {
            const char *ip = NULL;
            if (pod->status && pod->status->n_podips)
                ip = pod->status->podips[0]->ip;
            if ((!ip || !*ip) && pod->status)
                ip = pod->status->podip;
            ctl_tw_printf(tw, "\t%s\t%s\t%s\t<none>", or_str(ip, "<none>"),
                          or_str(pod->spec ? pod->spec->nodename : NULL, "<none>"),
                          or_str(pod->status ? pod->status->nominatednodename : NULL, "<none>"));
        }
    } else if (k == &kind_node) {
        const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
        char st[64];
        ctl_node_status(st, sizeof(st), node);
        char *roles = ctl_node_roles(node);
        const Coracle__V1__NodeSystemInfo *ni = node->status ? node->status->nodeinfo : NULL;
        ctl_tw_printf(tw, "%s\t%s\t%s\t%s\t%s", name, st, roles, age,
                      ni ? or_str(ni->kubeletversion, "") : "");
        free(roles);
        if (o->wide)
            ctl_tw_printf(tw, "\t%s\t%s\t%s\t%s\t%s", node_address(node, "InternalIP"),
                          node_address(node, "ExternalIP"),
                          or_str(ni ? ni->osimage : NULL, "<unknown>"),
                          or_str(ni ? ni->kernelversion : NULL, "<unknown>"),
                          or_str(ni ? ni->containerruntimeversion : NULL, "<unknown>"));
    } else if (k == &kind_event) {
        print_event_row(tw, (const Coracle__V1__Event *)obj, o);
        if (o->show_labels)
            print_labels(tw, md);
        ctl_tw_printf(tw, "\n");
        return;
    } else if (k == &kind_lease) {
        const Coracle__V1__Lease *l = (const Coracle__V1__Lease *)obj;
        ctl_tw_printf(tw, "%s\t%s\t%s", name, l->spec ? or_str(l->spec->holderidentity, "") : "",
                      age);
    } else {
        ctl_tw_printf(tw, "%s\t%s", name, age);
    }
    if (o->show_labels)
        print_labels(tw, md);
    ctl_tw_printf(tw, "\n");
}
