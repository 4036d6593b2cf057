/* edges: to be written */
#include "powerlogger/edges.h"
