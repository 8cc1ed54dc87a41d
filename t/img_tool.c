/*
 * img_tool: `img-tool image import|ls|rm ...` runs the `coraclectl image`
 * verb (src/ctl/cmd_image.c) on its own, so the image e2e tests do not
 * depend on coraclectl's dispatch table.
 */
#include "config.h"

#include "cmd_image.h"
#include "util.h"

int main(int argc, char **argv)
{
    log_init("coraclectl");
    return ctl_cmd_image(argc - 1, argv + 1);
}
