/*
 * nngerr.c - see nngerr.h.
 */
#include "nngerr.h"

#include <nng/nng.h>

#include "cfgrecv/actor.h"

int
crt_open_error(int nng_rv)
{
    switch (nng_rv) {
    case NNG_ENOMEM:
        return CR_ENOMEM;
    case NNG_EADDRINUSE:
        return CR_EEXIST;
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return CR_EINVAL;
    default:
        return CR_ENNG;
    }
}
