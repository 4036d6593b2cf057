/* detector: to be written */
#include "powerlogger/detector.h"
