/*
 * qty: Kubernetes resource quantities, parsed the way apimachinery's
 * resource.ParseQuantity does (same grammar, same suffixes, same error texts)
 * and held as int64 milli-units. Like Quantity.MilliValue(), values finer than
 * a milli-unit round up ("1n" is 1m: if you ask for some, you get some).
 *
 *   <quantity>     ::= <signedNumber><suffix>
 *   <number>       ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
 *   <suffix>       ::= <binarySI> | <decimalExponent> | <decimalSI>
 *   <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei
 *   <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E
 *   <decimalExp>   ::= "e" <signedNumber> | "E" <signedNumber>
 *
 * Unlike Kubernetes (which validates the sign later, per field), a negative
 * quantity is refused here, since no coracle resource can be negative; a value
 * past int64 milli-units is refused rather than silently capped.
 */
#include "config.h"

#include "qty.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QTY_ERR_FORMAT                                                                             \
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define QTY_ERR_NUMERIC "unable to parse numeric part of quantity"
#define QTY_ERR_SUFFIX "unable to parse quantity's suffix"
#define QTY_ERR_NEGATIVE "must be greater than or equal to 0"
#define QTY_ERR_RANGE "quantity too large: must be at most 9223372036854775807m"

/* Keep at most this many significant digits: 10^36 < 2^120. */
#define QTY_MAX_DIGITS 36

static int fail(char **err, const char *msg)
{
    if (err)
        *err = xstrdup(msg);
    return -1;
}

/* Suffix -> base (10 or 2) and exponent; -1 if not a valid suffix. */
static int suffix_interpret(const char *s, size_t n, int *base, int *exp)
{
    static const struct {
        char s[3];
        int base, exp;
    } tab[] = {
        {"", 10, 0},   {"n", 10, -9}, {"u", 10, -6}, {"m", 10, -3}, {"k", 10, 3},  {"M", 10, 6},
        {"G", 10, 9},  {"T", 10, 12}, {"P", 10, 15}, {"E", 10, 18}, {"Ki", 2, 10}, {"Mi", 2, 20},
        {"Gi", 2, 30}, {"Ti", 2, 40}, {"Pi", 2, 50}, {"Ei", 2, 60},
    };
    /* the suffixes are 0 to 2 bytes, NUL-padded to 3: compared in place, no strlen */
    for (size_t i = 0; n <= 2 && i < ARRAY_SIZE(tab); i++) {
        size_t k = 0;
        while (k < n && tab[i].s[k] == s[k])
            k++;
        if (k == n && tab[i].s[n] == 0) {
            *base = tab[i].base;
            *exp = tab[i].exp;
            return 0;
        }
    }
    if (n > 1 && (s[0] == 'e' || s[0] == 'E')) {
        /* Kubernetes: strconv.ParseInt(suffix[1:], 10, 32). */
        size_t i = 1;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (i == n)
            return -1;
        long long v = 0;
        for (size_t j = i; j < n; j++) {
            if (s[j] < '0' || s[j] > '9')
                return -1;
            v = v * 10 + (s[j] - '0');
            if (v > (long long)INT32_MAX + 1)
                return -1;
        }
        if (s[1] == '-')
            v = -v;
        if (v > INT32_MAX || v < INT32_MIN)
            return -1;
        *base = 10;
        *exp = (int)v;
        return 0;
    }
    return -1;
}

int qty_parse(const char *str, int64_t *milli, char **err)
{
    if (err)
        *err = NULL;
    if (!str || !*str)
        return fail(err, QTY_ERR_FORMAT);

    size_t pos = 0, end = strlen(str);
    int negative = 0;
    if (str[0] == '-') {
        negative = 1;
        pos++;
    } else if (str[0] == '+') {
        pos++;
    }
    /* Leading zeros; a string of only sign and zeros is 0 (as Kubernetes). */
    while (pos < end && str[pos] == '0')
        pos++;
    if (pos >= end) {
        *milli = 0;
        return 0;
    }
    size_t num = pos;
    while (pos < end && str[pos] >= '0' && str[pos] <= '9')
        pos++;
    size_t num_len = pos - num, den = pos, den_len = 0;
    int had_digits = num_len > 0 || num > (size_t)(str[0] == '-' || str[0] == '+');
    if (pos < end && str[pos] == '.') {
        pos++;
        den = pos;
        while (pos < end && str[pos] >= '0' && str[pos] <= '9')
            pos++;
        den_len = pos - den;
        had_digits |= den_len > 0;
    }
    /* The suffix: letters, then an optional sign and digits (exponent). */
    size_t suf = pos;
    while (pos < end && strchr("eEinumkKMGTP", str[pos]))
        pos++;
    if (pos < end && (str[pos] == '-' || str[pos] == '+'))
        pos++;
    while (pos < end && str[pos] >= '0' && str[pos] <= '9')
        pos++;
    if (pos < end)
        return fail(err, QTY_ERR_FORMAT);

    int base, exp;
    if (suffix_interpret(str + suf, end - suf, &base, &exp) < 0)
        return fail(err, QTY_ERR_SUFFIX);
    if (!had_digits)
        return fail(err, QTY_ERR_NUMERIC);

    /*
     * value = digits * 10^scale * 2^bexp, digits being the significant digits
     * of num.den. Keep QTY_MAX_DIGITS of them; "sticky" remembers whether a
     * non-zero digit was dropped (it only matters for rounding up).
     */
    __int128 digits = 0;
    int ndig = 0, sticky = 0;
    long long scale = 3; /* milli-units */
    int bexp = 0;
    if (base == 10)
        scale += exp;
    else
        bexp = exp;
    for (size_t i = 0; i < num_len + den_len; i++) {
        char c = i < num_len ? str[num + i] : str[den + i - num_len];
        int is_frac = i >= num_len;
        if (ndig == 0 && c == '0') { /* leading zeros of the fraction */
            if (is_frac)
                scale--;
            continue;
        }
        if (ndig < QTY_MAX_DIGITS) {
            digits = digits * 10 + (c - '0');
            ndig++;
            if (is_frac)
                scale--;
        } else {
            if (c != '0')
                sticky = 1;
            if (!is_frac)
                scale++;
        }
    }
    if (digits == 0) {
        *milli = 0;
        return 0;
    }
    if (negative)
        return fail(err, QTY_ERR_NEGATIVE);

    __int128 v = digits;
    const __int128 max = INT64_MAX;
    /* Make room for the binary factor; only absurdly long inputs get here. */
    while (bexp > 0 && v >= ((__int128)1 << (126 - bexp))) {
        if (scale >= 0)
            return fail(err, QTY_ERR_RANGE);
        if (v % 10)
            sticky = 1;
        v /= 10;
        scale++;
    }
    v <<= bexp;
    if (scale >= 0) {
        if (v > max)
            return fail(err, QTY_ERR_RANGE);
        for (long long i = 0; i < scale; i++) {
            v *= 10;
            if (v > max)
                return fail(err, QTY_ERR_RANGE);
        }
        if (sticky) {
            /* a non-zero digit was dropped below the kept ones: round up */
            if (v == max)
                return fail(err, QTY_ERR_RANGE);
            v++;
        }
    } else {
        int rem = sticky;
        for (long long i = 0; i < -scale && v > 0; i++) {
            if (v % 10)
                rem = 1;
            v /= 10;
        }
        if (rem)
            v++;
        if (v > max)
            return fail(err, QTY_ERR_RANGE);
    }
    *milli = (int64_t)v;
    return 0;
}

int64_t qty_value(int64_t milli)
{
    if (milli >= 0)
        return milli / 1000 + (milli % 1000 != 0);
    return milli / 1000;
}

void qty_format(char *buf, size_t n, int64_t milli, int binary)
{
    const char *sign = "";
    uint64_t m = (uint64_t)milli;
    if (milli < 0) {
        sign = "-";
        m = (uint64_t)0 - (uint64_t)milli;
    }
    if (m == 0) {
        snprintf(buf, n, "0");
        return;
    }
    /* Binary only for whole units of at least 1024 (as Kubernetes: else DecimalSI). */
    if (binary && m % 1000 == 0 && m / 1000 >= 1024) {
        static const char *bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
        uint64_t u = m / 1000;
        int k = 0;
        while (k < 6 && u % 1024 == 0) {
            u /= 1024;
            k++;
        }
        snprintf(buf, n, "%s%llu%s", sign, (unsigned long long)u, bin[k]);
        return;
    }
    static const char *dec[] = {"m", "", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (k < 7 && m % 1000 == 0) {
        m /= 1000;
        k++;
    }
    snprintf(buf, n, "%s%llu%s", sign, (unsigned long long)m, dec[k]);
}
