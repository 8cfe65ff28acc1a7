/*
 * notify_consumer.h - SUB to the config service's notify stream.
 *
 * Registered as "notify". Receives with an nng aio (never
 * NNG_OPT_RECVTIMEO on SUB: it crashes nng 1.5.2) and watches the
 * stream's pipes. The nng callbacks only post messages to this actor; the
 * actor validates each ConfigPush with the bounded codec (a malformed one
 * is logged and dropped) and forwards it to "flow-manager" as RM_PUSH,
 * and reports the stream going up, down and up again as RM_STREAM (a
 * reconnect makes the manager resync in full: notifies may have been
 * missed while the stream was down).
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
