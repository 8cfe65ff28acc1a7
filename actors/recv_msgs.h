/*
 * recv_msgs.h - the messages the receiver's actors exchange, their type
 * numbers and msgpack payloads. Data flows one way (DESIGN.md):
 *
 *   notify consumer --RM_PUSH/RM_STREAM--> flow manager --RM_FETCH-->
 *   fetcher --RM_FETCHED/RM_DISCOVERED--> flow manager --RM_FLOWS/
 *   RM_SYNC_END--> handler actors
 *
 * plus RM_HANDLER_UP (handler -> manager, "send me everything"),
 * RM_RESYNC (cra_receiver_resync on SIGHUP -> manager; the periodic
 * check is the manager's own timer) and RM_QUERY_FLOWS (anyone ->
 * handler actor, cr_call; the reply lists its flows).
 *
 * Every encoder returns a new message the caller owns (NULL on allocation
 * failure); every decoder returns 0 or CR_EPROTO and leaves pointers into
 * the (borrowed) message, valid while the message is.
 */
#ifndef CRA_RECV_MSGS_H
#define CRA_RECV_MSGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgrecv/actor.h"

enum {
    RM_PUSH = CR_MSG_USER + 100, /* payload: the ConfigPush wire bytes */
    RM_STREAM,       /* {up: bool, reconnect: bool} notify stream state */
    RM_RESYNC,       /* {reason: str} full resync */
    RM_FETCH,        /* [ws, ...] fetch these workspaces */
    RM_DISCOVER,     /* {} list workspaces with flows */
    RM_DISCOVERED,   /* [version, ws, ...] workspaces with flows */
    RM_FETCHED,      /* RM_FLOWS layout, full = true: a fetched ws */
    RM_FLOWS,        /* {ws, version, full, ops:[[op,id,text|nil]..]} */
    RM_SYNC_END,     /* {workspaces:[..]} flows elsewhere must stop */
    RM_HANDLER_UP,   /* {name} */
    RM_QUERY_FLOWS,  /* {} -> reply: [[ws,id,state,err,restarts,since,
                        blueprint], ...] */
    RM_DONE,         /* {ws, id, seq, rc, err} completion of PENDING */
    RM_FETCH_REPLY,  /* fetcher-internal: client callback -> fetcher */
    RM_FETCH_FAILED, /* {ws, error} a fetch failed; the fetcher retries */
    RM_STATUS,       /* cr_call to the flow manager: reply rm_status */
    RM_FLOW_DOWN,    /* rm_done layout (seq 0): a running flow failed */
    RM_FETCH_DONE,   /* fetcher-internal: str ws; its RM_FETCHED went to
                        the flow manager straight from the callback */
    RM_SLOT_FREE,    /* fetcher-internal, empty: a direct fetch freed a
                        slot while the fetcher waited for one */
    RM_INTERNAL_MAX = CR_MSG_USER + 199,
};

/* A string slice into a borrowed message. */
typedef struct rm_str {
    const char *p;
    size_t len;
} rm_str;

enum { RM_OP_START = 0, RM_OP_UPDATE = 1, RM_OP_STOP = 2 };

typedef struct rm_flow_op {
    uint8_t op;
    rm_str id;
    rm_str text; /* p == NULL for stop */
} rm_flow_op;

/* ---- RM_FLOWS ------------------------------------------------------ */

/* rm_flows_builder accumulates one workspace's ops into a message. */
typedef struct rm_flows_builder {
    size_t n;       /* ops added */
    cr_msg *ops;    /* ops packed here, framed by rm_flows_finish */
} rm_flows_builder;

/* rm_flows_begin starts a builder. Returns 0 or CR_ENOMEM. */
int rm_flows_begin(rm_flows_builder *b);

/* rm_flows_add appends one op (text may be NULL for stop). 0/CR_ENOMEM. */
int rm_flows_add(rm_flows_builder *b, int op, const char *id, size_t id_len,
                 const char *text, size_t text_len);

/* rm_flows_finish frames the message for workspace ws and returns it in
 * *out (the caller owns it). full = the ops are the workspace's whole
 * wanted set (all RM_OP_START) and flows not listed must stop. Frees the
 * builder's buffers in every case; 0 or CR_ENOMEM. */
int rm_flows_finish(rm_flows_builder *b, const char *ws, size_t ws_len,
                    uint64_t version, bool full, cr_msg **out);

/* rm_flows_abort frees a builder without producing a message. */
void rm_flows_abort(rm_flows_builder *b);

typedef struct rm_flows {
    rm_str ws;
    uint64_t version;
    bool full;
    uint64_t n;   /* ops announced */
    uint64_t i;   /* ops read */
    const char *cur; /* cursor into the borrowed message */
    size_t left;
} rm_flows;

/* rm_flows_decode reads the header; ops are then read with rm_flows_next.
 * 0 or CR_EPROTO. */
int rm_flows_decode(const cr_msg *m, rm_flows *out);

/* rm_flows_next reads the next op; returns 1 with *op filled, 0 at the
 * end, -1 on a malformed op. */
int rm_flows_next(rm_flows *f, rm_flow_op *op);

/* ---- simple messages ----------------------------------------------- */

/* rm_strlist_new builds a message of `type` whose payload is an array of
 * n strings. NULL on ENOMEM. */
cr_msg *rm_strlist_new(uint32_t type, const char *const *v, size_t n);

/* rm_strlist_decode reads such an array: calls fn for each string. 0 or
 * CR_EPROTO. */
int rm_strlist_decode(const cr_msg *m,
                      void (*fn)(void *arg, const char *s, size_t len),
                      void *arg);

/* rm_stream_new / rm_stream_decode: notify stream up or down. */
cr_msg *rm_stream_new(bool up, bool reconnect);
int rm_stream_decode(const cr_msg *m, bool *up, bool *reconnect);

/* rm_text_new: a message whose payload is one string (RM_RESYNC reason,
 * RM_HANDLER_UP name). rm_text_decode reads it. */
cr_msg *rm_text_new(uint32_t type, const char *s);
int rm_text_decode(const cr_msg *m, rm_str *out);

/* rm_call sends actor `to` a request of `type` whose payload is a copy of
 * data[0..len) (cr_call from a non-actor thread) and sets *reply (owned by
 * the caller) on 0. Returns a CR_E* code otherwise, having freed the
 * request whatever happened (CR_ENOENT for to == CR_NOBODY). */
int rm_call(cr_rt *rt, cr_id to, uint32_t type, const void *data, size_t len,
            int timeout_ms, cr_msg **reply);

/* rm_query_struct asks the actor registered as `name` (cr_call, message
 * type `type`, empty payload) for a reply that is a plain struct of
 * `size` bytes (same process), copied into out. 0 or a CR_E* code
 * (CR_ENOENT: no such actor; CR_EPROTO: reply of another size). */
int rm_query_struct(cr_rt *rt, const char *name, uint32_t type,
                    int timeout_ms, void *out, size_t size);

/* RM_DONE */
cr_msg *rm_done_new(const char *ws, const char *id, uint64_t seq, int rc,
                    const char *err);
int rm_done_decode(const cr_msg *m, rm_str *ws, rm_str *id, uint64_t *seq,
                   int *rc, rm_str *err);

#endif
