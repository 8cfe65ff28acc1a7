/*
 * lguard.h - the listener guard: restarts a listener that has stopped
 * completing connections.
 *
 * Why: with nng 1.5.2 a peer that connects and hangs up before the
 * listener has written its SP header (a client killed, or timing out
 * within a millisecond, or any local process doing connect+close on the
 * ipc path) wedges that listener for good: later connections are
 * accepted by the kernel, the listener writes its header and never reads
 * the peer's, so no new client is ever served again (reproduced with a
 * bare nng REP socket and with nngcat; fixed upstream since). Established
 * connections keep working; closing the listener and listening again
 * recovers.
 *
 * How: one process-wide guard thread probes every watched listener every
 * period: it connects to the listener's URL as its peer would (ipc:// and
 * tcp:// with a plain socket speaking the SP header, so that the thread
 * never opens and closes an nng socket: nng 1.5.2 can hang for good in
 * nng_close; other transports with an nng socket of the peer protocol)
 * and waits for the listener's socket to report a new pipe (its owner
 * calls crt_lguard_pipe_added from its NNG_PIPE_EV_ADD_POST callback).
 * Any pipe added in the meantime counts. Only a probe that sees none for
 * CRT_LGUARD_WAIT_MS (a loaded machine negotiates in milliseconds, and a
 * wedged listener never does) makes the guard close the listener (which
 * drops its connections: clients redial) and create it again, with a
 * WARN line. The probe is never hung up before its own connection is up
 * (or that verdict), even when another client's pipe has already proved
 * the listener alive: hanging up mid-handshake is the very trigger. A
 * probe's pipe is visible to the owner's callback for the few
 * milliseconds it lives. Stopping a guard (its listener is about to
 * close) cuts a probe in flight to CRT_LGUARD_STOP_WAIT_MS.
 *
 * Thread safety: crt_lguard_pipe_added may be called from any thread (it
 * is an atomic add); start/stop/free from the owner's thread.
 */
#ifndef CRT_LGUARD_H
#define CRT_LGUARD_H

#include <stdbool.h>

#include <nng/nng.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crt_lguard crt_lguard;

#define CRT_LGUARD_PERIOD_MS 3000
#define CRT_LGUARD_WAIT_MS 5000
/* a probe in flight when its guard is stopped waits at most this long */
#define CRT_LGUARD_STOP_WAIT_MS 250

/* Creates and starts a listener on s for url (the owner's own options,
 * such as ipc permissions, included). Returns an nng error or 0. */
typedef int (*crt_lguard_listen_fn)(void *arg, nng_socket s, const char *url,
                                    nng_listener *out);

/* Opens a socket of the listener's peer protocol (nng_req0_open for a
 * REP listener, nng_sub0_open for PUB). */
typedef int (*crt_lguard_peer_fn)(nng_socket *out);

/* crt_lguard_new allocates a guard that counts pipes but watches nothing
 * yet (give it as the argument of the socket's ADD_POST callback before
 * listening). NULL when out of memory: the owner runs unguarded. */
crt_lguard *crt_lguard_new(void);

/* crt_lguard_pipe_added counts a pipe added to the guarded socket. NULL
 * is a no-op. */
void crt_lguard_pipe_added(crt_lguard *g);

/* crt_lguard_pipe_cb is an NNG_PIPE_EV_ADD_POST callback for a socket
 * whose owner has nothing else to do there: arg is the guard (or NULL). */
void crt_lguard_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg);

/* crt_lguard_listen is a crt_lguard_listen_fn for a listener without
 * options: nng_listen(s, url, out, 0); arg is unused. */
int crt_lguard_listen(void *arg, nng_socket s, const char *url,
                      nng_listener *out);

/* crt_lguard_start watches listener l of socket s, listening on url (a
 * tcp:// URL with port 0 is probed and restarted on the bound port).
 * relisten(arg, ...) creates its replacement. period_ms 0 =
 * CRT_LGUARD_PERIOD_MS. Returns 0, CR_EINVAL or CR_ENOMEM (then the
 * listener runs unguarded; the owner may go on). g NULL: CR_EINVAL. */
int crt_lguard_start(crt_lguard *g, nng_socket s, nng_listener l,
                     const char *url, crt_lguard_peer_fn peer,
                     crt_lguard_listen_fn relisten, void *arg, int period_ms);

/* crt_lguard_restarts returns how many times the listener was restarted. */
unsigned crt_lguard_restarts(const crt_lguard *g);

/* crt_lguard_stop stops watching, waiting for a probe of this guard in
 * progress; call it before closing the socket. Idempotent; NULL no-op. */
void crt_lguard_stop(crt_lguard *g);

/* crt_lguard_free frees g (stopping it first); call it after the socket
 * is closed, when no pipe callback can run any more. NULL is a no-op. */
void crt_lguard_free(crt_lguard *g);

#ifdef __cplusplus
}
#endif
#endif /* CRT_LGUARD_H */
