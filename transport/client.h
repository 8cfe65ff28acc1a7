/*
 * client.h - REQ client of the config service.
 *
 * One long-lived REQ socket, dialed once (nng redials by itself after a
 * disconnect), with a fixed pool of nng contexts so that up to `nctx`
 * requests are in flight at once over the one connection. Requests
 * beyond the pool wait in a FIFO queue (they never fail for lack of a
 * context); their timeout runs from the moment they were submitted.
 *
 * NNG_OPT_REQ_RESENDTIME is disabled (NNG_DURATION_INFINITE): a put or a
 * delete is not idempotent (each bumps the version), so nng must not
 * re-send it after 60 s on its own (NOTES.md). Callers that want retries
 * do them explicitly after a timeout. (nng still re-sends a request whose
 * connection broke before the reply came; that is the only re-send.)
 *
 * The client carries bytes; it does not know the codec. Encode with
 * crt_request_encode and decode the reply with crt_response_decode.
 *
 * Status codes passed to callbacks and returned: CR_OK, CR_ETIMEDOUT (no
 * reply within the timeout, including time spent queued or waiting for a
 * connection), CR_ECLOSED (the client is closing), CR_ENOMEM, CR_ENNG
 * (another nng failure; logged).
 *
 * Thread safety: every function may be called from any thread, except
 * crt_client_close (once, from a thread that is not running one of this
 * client's callbacks).
 */
#ifndef CRT_CLIENT_H
#define CRT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crt_client crt_client;

#define CRT_CLIENT_DEFAULT_NCTX    8
#define CRT_CLIENT_DEFAULT_TIMEOUT 10000 /* ms, when a call passes 0 */

typedef struct crt_client_opts {
    unsigned nctx;   /* contexts in flight; 0 = CRT_CLIENT_DEFAULT_NCTX */
    size_t max_recv; /* largest reply accepted (NNG_OPT_RECVMAXSZ);
                        0 = CRT_DEFAULT_MAX_SIZE (16 MiB). Larger replies
                        are dropped by nng: the request times out. */
} crt_client_opts;

/* A request's completion. Runs on an nng thread and must not block (post
 * the result to a mailbox, e.g. cr_send(rt, CR_NOBODY, me,
 * cr_msg_new_bytes(T, reply, len))). status is CR_OK and reply[0..len)
 * the reply body, or an error and reply == NULL, len == 0.
 * OWNERSHIP: reply is borrowed; it is valid only until the callback
 * returns (copy it to keep it). The callback runs exactly once per
 * accepted request (crt_client_request_async returned 0), also when the
 * client is closed (CR_ECLOSED). */
typedef void (*crt_client_cb)(void *arg, int status, const void *reply,
                              size_t len);

/* crt_client_open creates a client dialing url (ipc:// or tcp://). The
 * dial is non-blocking: the client is returned even if nobody listens
 * yet, and requests wait (within their timeout) for the connection.
 * opts may be NULL. Returns 0 and sets *out, CR_EINVAL for a bad URL,
 * CR_ENOMEM or CR_ENNG; nothing is left open on failure. */
int crt_client_open(const char *url, const crt_client_opts *opts,
                    crt_client **out);

/* crt_client_request_async submits req[0..len) (copied; the caller keeps
 * its buffer). timeout_ms: > 0 milliseconds, 0 = the default (10 s),
 * < 0 = no timeout. Returns 0 when accepted (cb will run exactly once),
 * or CR_ECLOSED / CR_ENOMEM / CR_EINVAL and cb will not run. */
int crt_client_request_async(crt_client *c, const void *req, size_t len,
                             int timeout_ms, crt_client_cb cb, void *arg);

/* crt_client_request is the blocking form: it waits for the reply and on
 * CR_OK sets *reply to a malloc'd copy (free with free()) and *rlen.
 * Returns the status as above; *reply is NULL on error. Must not be
 * called from a client callback. */
int crt_client_request(crt_client *c, const void *req, size_t len,
                       int timeout_ms, void **reply, size_t *rlen);

/* crt_client_close fails every queued request with CR_ECLOSED, aborts the
 * ones in flight (their callbacks run with CR_ECLOSED before this
 * returns), closes the socket and frees c. NULL is a no-op. */
void crt_client_close(crt_client *c);

#ifdef __cplusplus
}
#endif
#endif /* CRT_CLIENT_H */
