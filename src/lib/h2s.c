/* h2s: placeholder, to be written (see h2s.h). */
#include "config.h"
