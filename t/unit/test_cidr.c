/* Unit tests for src/lib/cidr.c: what counts as a CIDR, IPv4 arithmetic, printing. */
#include "config.h"
#include "tap.h"

#include "cidr.h"

int main(void)
{
    static const char *const good[] = {"10.244.0.0/16", "10.244.1.5/24", "0.0.0.0/0",
                                       "1.2.3.4/32",    "fd00::/64",     "2001:db8::1/128"};
    static const char *const bad[] = {"10.244.0.0",  "10.244.0.0/33", "10.244.0.0/", "10.244/16",
                                      "10.0.0.0/08", "x/8",           "fd00::/129",  "/24",
                                      "10.0.0.0/2a", "10.0.0.0/1000"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        ok(cidr_valid(good[i]), "%s is a CIDR", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        ok(!cidr_valid(bad[i]), "%s is not", bad[i]);

    struct cidr4 c;
    ok(cidr_parse4("fd00::/64", &c) < 0, "IPv6 is not parsed as IPv4");
    ok(cidr_parse4("10.244.1.5/24", &c) == 0, "10.244.1.5/24 parses");
    is_int(c.bits, 24, "  its prefix length");
    is_int(cidr_network(&c), (10u << 24) | (244u << 16) | (1u << 8), "  its network");
    ok(cidr_contains(&c, (10u << 24) | (244u << 16) | (1u << 8) | 200), "  holds 10.244.1.200");
    ok(!cidr_contains(&c, (10u << 24) | (244u << 16) | (2u << 8)), "  not 10.244.2.0");
    char buf[32];
    cidr_format4(&c, buf, sizeof(buf));
    is_str(buf, "10.244.1.0/24", "printed as its network");
    ok(cidr_parse4("0.0.0.0/0", &c) == 0 && cidr_network(&c) == 0 && cidr_contains(&c, 0xffffffffu),
       "0.0.0.0/0 holds everything");
    cidr_ip4(0xc0a80001u, buf, sizeof(buf));
    is_str(buf, "192.168.0.1", "an address printed");
    return done_testing();
}
