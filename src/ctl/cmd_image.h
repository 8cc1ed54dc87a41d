/*
 * cmd_image: the `coraclectl image` verb, over the node's local image store
 * (src/lib/image.h); it works on the node's disk, not through the apiserver.
 *   coraclectl image import FILE... [--tag NAME] [--image-dir DIR]
 *   coraclectl image ls [-q] [--image-dir DIR]
 *   coraclectl image rm NAME|ID... [--force] [--image-dir DIR]
 *   coraclectl image prune [--root-dir DIR] [--image-dir DIR]   (also rm --prune)
 * The store is --image-dir, else $CORACLE_IMAGE_DIR, else IMG_DEFAULT_DIR.
 */
#ifndef CORACLE_CMD_IMAGE_H
#define CORACLE_CMD_IMAGE_H

/* argv[0] is "image". Returns the process exit status (0 ok, 1 failure, 2 usage). */
int ctl_cmd_image(int argc, char **argv);

#endif
