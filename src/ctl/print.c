/*
 * print: tables as kubectl prints them. See print.h. The tabwriter follows
 * Go's text/tabwriter; the columns and their cells come from columns.c.
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

void ctl_fmt_rfc1123z(char *buf, size_t n, int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* ---------------------------------------------------------- tables */

/* The columns -o wide shows, or the default ones (priority 0), as kubectl picks them. */
static bool shown(const struct cols_def *d, const struct ctl_print_opts *o)
{
    return d->priority == 0 || o->wide;
}

void ctl_print_header(struct ctl_tw *tw, const struct kind *k, const struct ctl_print_opts *o)
{
    if (o->no_headers)
        return;
    if (o->all_ns && k->namespaced)
        ctl_tw_printf(tw, "NAMESPACE\t");
    size_t n;
    const struct cols_def *d = cols_defs(k, &n);
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        if (!shown(&d[i], o))
            continue;
        /* kubectl's header is the column's name in upper case */
        char up[64];
        size_t j = 0;
        for (; d[i].name[j] && j + 1 < sizeof(up); j++)
            up[j] = (char)(d[i].name[j] >= 'a' && d[i].name[j] <= 'z' ? d[i].name[j] - 32
                                                                      : d[i].name[j]);
        up[j] = '\0';
        ctl_tw_printf(tw, "%s%s", sep, up);
        sep = "\t";
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

/* A cell's text; a tab in it (an event's message may have one) would end the cell. */
static void print_cell(struct ctl_tw *tw, const struct cols_cell *c)
{
    if (!c->str) {
        ctl_tw_printf(tw, "%" PRId64, c->num);
        return;
    }
    size_t start = tw->text.len;
    ctl_tw_printf(tw, "%s", c->str);
    for (size_t i = start; i < tw->text.len; i++)
        if (tw->text.p[i] == '\t')
            tw->text.p[i] = ' ';
}

void ctl_print_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                   const struct ctl_print_opts *o)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(obj);
    if (o->all_ns && k->namespaced)
        ctl_tw_printf(tw, "%s\t", md && md->namespace_ ? md->namespace_ : "");
    size_t n;
    const struct cols_def *d = cols_defs(k, &n);
    struct cols_row row;
    cols_row(k, obj, o->now_ns, &row);
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        if (!shown(&d[i], o))
            continue;
        ctl_tw_printf(tw, "%s", sep);
        if (o->kind_prefix && !strcmp(d[i].format, "name"))
            ctl_tw_printf(tw, "%s/", o->kind_prefix);
        print_cell(tw, &row.cell[i]);
        sep = "\t";
    }
    cols_row_free(&row);
    if (o->show_labels)
        print_labels(tw, md);
    ctl_tw_printf(tw, "\n");
}
