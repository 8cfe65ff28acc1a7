/*
 * redial.h - a watchdog for nng dialers that stop redialing.
 *
 * Why: with nng 1.5.2 a dialer whose peer restarts sometimes never dials
 * again: no pipe, no connect() call, for ever (seen about once per 100
 * restarts of cfgsvcd under a running cfgrecvd, on the REQ socket and on
 * the SUB socket alike, over ipc; nng issue #970 describes the same with
 * tcp). The receiver then waited for a config service that was back.
 *
 * What: every CRT_REDIAL_PERIOD_MS the watchdog looks at the socket's
 * pipe count (kept by the owner's pipe callback through
 * crt_redial_pipe_event); once the socket has had no pipe for stuck_ms it
 * closes the dialer and dials again (non-blocking; nng's own backoff then
 * applies), and again every stuck_ms while nothing connects. While the
 * peer is merely down this costs one extra connect attempt per stuck_ms.
 *
 * Threads: the watchdog runs on an nng aio callback and only calls
 * nng_dialer_close and nng_dial, never the owner's code.
 * crt_redial_pipe_event only touches atomics (it runs in nng's pipe
 * callback, with the socket lock held). Stop the watchdog before closing
 * the socket (crt_redial_stop waits for a running check and no check
 * starts after it) and free it after (nng_close still runs the pipe
 * callbacks of the connections it tears down).
 */
#ifndef CRT_REDIAL_H
#define CRT_REDIAL_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#define CRT_REDIAL_PERIOD_MS 500
#define CRT_REDIAL_STUCK_MS 3000 /* three times the sockets' RECONNMAXT */

typedef struct crt_redial crt_redial;

/* crt_redial_new prepares a watchdog for sock (stuck_ms 0 = the
 * default); what names the socket in log lines ("notify", "client").
 * Store *out where the pipe callback finds it, then call
 * crt_redial_start: a pipe event between the two would be lost. 0 or
 * NNG_ENOMEM. */
int crt_redial_new(nng_socket sock, const char *url, unsigned stuck_ms,
                   const char *what, crt_redial **out);

/* crt_redial_start dials url (NNG_FLAG_NONBLOCK) and starts the checks.
 * Returns 0 or the nng error of the dial (no check runs then; stop still
 * frees w). */
int crt_redial_start(crt_redial *w);

/* crt_redial_pipe_event counts NNG_PIPE_EV_ADD_POST / REM_POST; other
 * events are ignored. NULL is a no-op (a pipe event before start). */
void crt_redial_pipe_event(crt_redial *w, nng_pipe_ev ev);

/* crt_redial_connected reports whether the socket has a pipe now. */
bool crt_redial_connected(const crt_redial *w);

/* crt_redial_count returns how many times the watchdog dialed again. */
uint64_t crt_redial_count(const crt_redial *w);

/* crt_redial_stop stops the checks (waiting for a running one); call it
 * before nng_close. crt_redial_free frees w after nng_close returned,
 * when no pipe callback can run any more. NULL is a no-op for both. */
void crt_redial_stop(crt_redial *w);
void crt_redial_free(crt_redial *w);

#endif /* CRT_REDIAL_H */
