/* lineproto: to be written */
#include "powerlogger/lineproto.h"
