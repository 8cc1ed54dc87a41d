/* sel: placeholder, to be written (see sel.h). */
#include "config.h"
