/*
 * nngerr.h - what an nng error of opening a socket means to a caller.
 */
#ifndef CRT_NNGERR_H
#define CRT_NNGERR_H

/* crt_open_error maps an nng error of opening, listening or dialing to a
 * CR_* code: NNG_ENOMEM -> CR_ENOMEM, NNG_EADDRINUSE -> CR_EEXIST, a URL
 * nng cannot use (NNG_EADDRINVAL, NNG_ENOTSUP, NNG_EINVAL) -> CR_EINVAL,
 * anything else -> CR_ENNG. The client, the server and the PUB/SUB pair
 * all answer with it. */
int crt_open_error(int nng_rv);

#endif /* CRT_NNGERR_H */
