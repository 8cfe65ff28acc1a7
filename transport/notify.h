/*
 * notify.h - the config service's notify stream: PUB (service side) and
 * SUB (receiver side).
 *
 * The service listens with PUB on its notify URL; receivers dial with
 * SUB, subscribed to everything. Each message is one encoded ConfigPush
 * (crt_push_encode / crt_push_decode); the transport carries bytes.
 *
 * The subscriber receives with an aio callback. It never sets
 * NNG_OPT_RECVTIMEO on the SUB socket (that crashes nng 1.5.2, issues
 * #1523/#1682). Connection changes come from nng_pipe_notify, whose
 * callback runs with the socket lock held: the subscriber only updates
 * its own counter there and forwards the event to the user callback,
 * which must likewise only post (never call socket functions).
 *
 * PUB/SUB is lossy by nature: a message published while no subscriber
 * is connected, or while a subscriber is (re)connecting, is lost. That
 * is why CRT_SUB_CONNECTED / CRT_SUB_RECONNECTED are reported: a
 * consumer must resync in full on each of them.
 */
#ifndef CRT_NOTIFY_H
#define CRT_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- publisher ------------------------------------------------------ */

typedef struct crt_pub crt_pub;

/* crt_pub_open listens with PUB on url. 0 and *out, or CR_EINVAL (bad
 * URL), CR_EEXIST (address in use), CR_ENOMEM, CR_ENNG. */
int crt_pub_open(const char *url, crt_pub **out);

/* crt_pub_send publishes data[0..len) (copied) to every connected
 * subscriber; never blocks (a subscriber that cannot keep up loses
 * messages). Returns 0, CR_ENOMEM or CR_ENNG. Thread-safe. */
int crt_pub_send(crt_pub *p, const void *data, size_t len);

/* crt_pub_subscribers returns how many subscribers are connected now. */
int crt_pub_subscribers(crt_pub *p);

/* crt_pub_close closes the socket (messages in flight are dropped) and
 * frees p. NULL is a no-op. */
void crt_pub_close(crt_pub *p);

/* ---- subscriber ----------------------------------------------------- */

typedef struct crt_sub crt_sub;

typedef enum crt_sub_event {
    CRT_SUB_CONNECTED = 1,    /* first connection since crt_sub_open */
    CRT_SUB_DISCONNECTED = 2, /* the connection is gone */
    CRT_SUB_RECONNECTED = 3,  /* connected again after a disconnection */
} crt_sub_event;

/* crt_sub_event_name returns "connected", "disconnected", "reconnected". */
const char *crt_sub_event_name(crt_sub_event ev);

typedef struct crt_sub_opts {
    /* A message arrived. nng thread, must not block. OWNERSHIP: data is
     * borrowed, valid only until the callback returns. Messages are
     * delivered one at a time, in arrival order. */
    void (*on_msg)(void *arg, const void *data, size_t len);
    /* A connection event. Runs inside nng's pipe callback with the
     * socket lock held: post/forward only; never call nng or crt_sub_*
     * from it. May be NULL. */
    void (*on_event)(void *arg, crt_sub_event ev);
    void *arg;
    size_t max_recv; /* NNG_OPT_RECVMAXSZ; 0 = CRT_DEFAULT_MAX_SIZE */
} crt_sub_opts;

/* crt_sub_open dials url with SUB (non-blocking: it connects whenever the
 * publisher is up, and reconnects after a loss), subscribes to all
 * messages and starts receiving. Returns 0 and *out, or CR_EINVAL,
 * CR_ENOMEM, CR_ENNG; nothing is left open on failure. */
int crt_sub_open(const char *url, const crt_sub_opts *opts, crt_sub **out);

/* crt_sub_connected reports whether a connection is up now. */
int crt_sub_connected(crt_sub *s);

/* crt_sub_close closes the socket, waits until no callback is running
 * and none will run again, and frees s. NULL is a no-op. Must not be
 * called from one of s's callbacks. */
void crt_sub_close(crt_sub *s);

#ifdef __cplusplus
}
#endif
#endif /* CRT_NOTIFY_H */
