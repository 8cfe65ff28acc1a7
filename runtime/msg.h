/*
 * msg.h - internal: the cr_msg layout and the envelope codec.
 *
 * An envelope on the wire is the msgpack array [type, from, corr, bin
 * payload]; a batch (one nng message) is a plain concatenation of them.
 * The encoder always writes fixarray(4), the shortest uint forms and bin
 * 8/16/32, so any msgpack reader can parse it; the decoder accepts exactly
 * those forms and checks every length against the bytes left.
 */
#ifndef CRI_MSG_H
#define CRI_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "cfgrecv/actor.h"

struct cr_msg {
    uint32_t type;
    cr_id from;
    uint64_t corr;
    uint8_t *data; /* owned unless borrowed */
    size_t len;
    size_t cap;
    bool borrowed;  /* a view into a received batch: never freed */
    bool pk_init;   /* pk has been set up */
    bool pk_failed; /* an append through pk failed (ENOMEM) */
    msgpack_packer pk;
};

/* An envelope decoded from a batch; data points into the batch. */
typedef struct cri_env {
    uint32_t type;
    cr_id from;
    uint64_t corr;
    const uint8_t *data;
    size_t len;
} cri_env;

/* CRI_ENV_HDR_MAX is the largest encoded envelope header. */
#define CRI_ENV_HDR_MAX 32

/* cri_env_hdr writes the header of an envelope whose payload is len bytes
 * into buf (CRI_ENV_HDR_MAX bytes) and returns its size. len must fit in
 * 32 bits (callers check). */
size_t cri_env_hdr(uint8_t *buf, uint32_t type, cr_id from, uint64_t corr,
                   size_t len);

/* cri_env_next decodes the envelope at *pos in buf[0..size) and advances
 * *pos. Returns 1 with *out set, 0 at the end of the batch, or -1
 * (CR_EPROTO) for a malformed envelope (*pos unchanged). */
int cri_env_next(const uint8_t *buf, size_t size, size_t *pos, cri_env *out);

/* cri_msg_view fills *view as a borrowed message over env. */
void cri_msg_view(cr_msg *view, const cri_env *env);

#endif
