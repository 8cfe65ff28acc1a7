/*
 * notify_consumer.h - SUB to the config service's notify stream.
 *
 * Registered as "notify". Receives with an nng aio (never
 * NNG_OPT_RECVTIMEO on SUB: it crashes nng 1.5.2) and watches the
 * stream's pipes. Each ConfigPush is validated with the bounded codec in
 * the receive callback (a malformed one is logged and dropped) and sent
 * to "flow-manager" as RM_PUSH without blocking; only when the manager
 * cannot take it at once does it go through this actor, which may wait.
 * Pipe events are posted to this actor, which reports the stream going
 * up, down and up again to the manager as RM_STREAM (a reconnect makes
 * the manager resync in full: notifies may have been missed).
 */
#ifndef CRA_NOTIFY_CONSUMER_H
#define CRA_NOTIFY_CONSUMER_H

#include "cfgrecv/actor.h"

typedef struct cra_notify_opts {
    const char *notify_url;
    size_t max_size; /* largest notify accepted; 0 = 16 MiB */
} cra_notify_opts;

/* The behaviour; spawn argument: const cra_notify_opts * that outlives
 * the actor. init fails for an unusable URL. */
extern const cr_behaviour cra_notify_behaviour;

#endif
