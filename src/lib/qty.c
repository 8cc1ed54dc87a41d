/* qty: placeholder, to be written (see qty.h). */
#include "config.h"
