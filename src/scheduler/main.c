/* coracle-scheduler: placeholder main, to be written. */
#include "config.h"
#include "util.h"
int main(int argc, char **argv)
{
    (void)argc;
    log_init(argv[0]);
    return 1;
}
