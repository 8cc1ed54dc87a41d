/* gcl: placeholder, to be written (see gcl.h). */
#include "config.h"
