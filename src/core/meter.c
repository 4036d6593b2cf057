/* meter: to be written */
#include "powerlogger/meter.h"
