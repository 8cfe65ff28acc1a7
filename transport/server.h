/*
 * server.h - REP server of the config service.
 *
 * One listening REP socket with `nctx` contexts: up to nctx requests are
 * held at once, so a request whose answer is slow never stalls another.
 * Each received request is handed to the callback with a token; the
 * answer is sent later, from any thread, with crt_server_reply(token).
 *
 * The server carries bytes; it does not know the codec.
 *
 * Thread safety: crt_server_reply / crt_server_drop may be called from
 * any thread, including from inside the callback, until
 * crt_server_close is called; never after (the server is freed).
 */
#ifndef CRT_SERVER_H
#define CRT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crt_server crt_server;

#define CRT_SERVER_DEFAULT_NCTX 8

typedef struct crt_server_opts {
    unsigned nctx;   /* contexts; 0 = CRT_SERVER_DEFAULT_NCTX */
    size_t max_recv; /* NNG_OPT_RECVMAXSZ; 0 = 2 * CRT_DEFAULT_MAX_SIZE.
                        Keep it above the codec's max_size so an oversized
                        request is received and answered "bad-request"
                        rather than dropped with its connection. */
    int guard_ms;    /* listener guard period (lguard.h); 0 = default */
} crt_server_opts;

/* A request arrived. Runs on an nng thread and must not block.
 * OWNERSHIP: data[0..len) is borrowed, valid only until the callback
 * returns. The token identifies the request; the callback's owner must
 * eventually call crt_server_reply or crt_server_drop with it (until it
 * does, that context receives nothing else). */
typedef void (*crt_server_cb)(void *arg, uint64_t token, const void *data,
                              size_t len);

/* crt_server_open listens on url (ipc:// or tcp://) and starts receiving
 * on every context. opts may be NULL. Returns 0 and sets *out, or
 * CR_EINVAL (bad URL), CR_EEXIST (address in use), CR_ENOMEM, CR_ENNG;
 * nothing is left open on failure. */
int crt_server_open(const char *url, const crt_server_opts *opts,
                    crt_server_cb cb, void *arg, crt_server **out);

/* crt_server_reply sends data[0..len) (copied) as the answer to token's
 * request and lets that context receive again. Returns 0, CR_ENOENT if
 * the token is stale (already answered or dropped), CR_ECLOSED when
 * closing, CR_ENOMEM (the request stays pending; retry or drop). */
int crt_server_reply(crt_server *s, uint64_t token, const void *data,
                     size_t len);

/* crt_server_drop abandons token's request without an answer (the
 * client will time out) and lets the context receive again. 0 or
 * CR_ENOENT. */
int crt_server_drop(crt_server *s, uint64_t token);

/* crt_server_restarts returns how many times the listener guard has
 * restarted the server's listener (lguard.h). */
unsigned crt_server_restarts(const crt_server *s);

/* crt_server_port returns the bound TCP port (for tcp://...:0), or 0. */
int crt_server_port(crt_server *s);

/* crt_server_close stops listening, waits for running callbacks, and
 * frees s. Pending requests are dropped. NULL is a no-op. */
void crt_server_close(crt_server *s);

#ifdef __cplusplus
}
#endif
#endif /* CRT_SERVER_H */
