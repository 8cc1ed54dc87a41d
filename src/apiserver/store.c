/* store: placeholder, to be written (see store.h). */
#include "config.h"
