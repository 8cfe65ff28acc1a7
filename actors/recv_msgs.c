/*
 * recv_msgs.c - payload codecs of the receiver's internal messages.
 * Encoding packs with msgpack-c straight into the cr_msg; decoding reads
 * with the bounded reader (transport/mpread.h) even though these messages
 * come only from our own actors: a bug must show as CR_EPROTO, not as a
 * wild read.
 *
 * RM_FLOWS is a sequence, not one object: a header array
 * [ws, version, full, n] followed by n op arrays [op, id, text|nil], so
 * that the builder can stream ops without knowing n up front (the ops are
 * packed into a scratch message and appended after the header).
 */
#include "recv_msgs.h"

#include <msgpack.h>
#include <string.h>

#include "mpread.h"

static void
pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

int
rm_flows_begin(rm_flows_builder *b)
{
    b->n = 0;
    b->ops = cr_msg_new(RM_FLOWS);
    return b->ops == NULL ? CR_ENOMEM : 0;
}

int
rm_flows_add(rm_flows_builder *b, int op, const char *id, size_t id_len,
             const char *text, size_t text_len)
{
    msgpack_packer *pk = cr_msg_packer(b->ops);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint8(pk, (uint8_t)op);
    pack_str(pk, id, id_len);
    if (text == NULL) {
        msgpack_pack_nil(pk);
    } else {
        pack_str(pk, text, text_len);
    }
    if (cr_msg_packer_failed(b->ops)) {
        return CR_ENOMEM;
    }
    b->n++;
    return 0;
}

void
rm_flows_abort(rm_flows_builder *b)
{
    cr_msg_free(b->ops);
    b->ops = NULL;
}

int
rm_flows_finish(rm_flows_builder *b, const char *ws, size_t ws_len,
                uint64_t version, bool full, cr_msg **out)
{
    cr_msg *m = cr_msg_new(RM_FLOWS);
    int rv = CR_ENOMEM;
    if (m != NULL) {
        msgpack_packer *pk = cr_msg_packer(m);
        msgpack_pack_array(pk, 4);
        pack_str(pk, ws, ws_len);
        msgpack_pack_uint64(pk, version);
        if (full) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        msgpack_pack_uint64(pk, b->n);
        if (!cr_msg_packer_failed(m) &&
            cr_msg_append(m, cr_msg_data(b->ops), cr_msg_len(b->ops)) == 0) {
            rv = 0;
            *out = m;
        } else {
            cr_msg_free(m);
        }
    }
    rm_flows_abort(b);
    return rv;
}

int
rm_flows_decode(const cr_msg *m, rm_flows *out)
{
    crt_mpr r;
    uint32_t n;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 4);
    if (crt_mpr_array(&r, &n) != 0 || n != 4 ||
        crt_mpr_str(&r, &out->ws.p, &out->ws.len) != 0 ||
        crt_mpr_uint(&r, &out->version) != 0 ||
        crt_mpr_bool(&r, &out->full) != 0 || crt_mpr_uint(&r, &out->n) != 0) {
        return CR_EPROTO;
    }
    crt_mpr_leave(&r);
    out->i = 0;
    out->cur = (const char *)r.p;
    out->left = crt_mpr_left(&r);
    return 0;
}

int
rm_flows_next(rm_flows *f, rm_flow_op *op)
{
    if (f->i >= f->n) {
        return f->left == 0 ? 0 : -1;
    }
    crt_mpr r;
    uint32_t n;
    uint64_t code;
    crt_mpr_init(&r, f->cur, f->left, 4);
    if (crt_mpr_array(&r, &n) != 0 || n != 3 ||
        crt_mpr_uint(&r, &code) != 0 || code > RM_OP_STOP ||
        crt_mpr_str(&r, &op->id.p, &op->id.len) != 0) {
        return -1;
    }
    op->op = (uint8_t)code;
    op->text.p = NULL;
    op->text.len = 0;
    if (!crt_mpr_nil(&r) &&
        crt_mpr_str(&r, &op->text.p, &op->text.len) != 0) {
        return -1;
    }
    crt_mpr_leave(&r);
    f->cur = (const char *)r.p;
    f->left = crt_mpr_left(&r);
    f->i++;
    return 1;
}

cr_msg *
rm_strlist_new(uint32_t type, const char *const *v, size_t n)
{
    cr_msg *m = cr_msg_new(type);
    if (m == NULL) {
        return NULL;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        pack_str(pk, v[i], strlen(v[i]));
    }
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

int
rm_strlist_decode(const cr_msg *m,
                  void (*fn)(void *arg, const char *s, size_t len), void *arg)
{
    crt_mpr r;
    uint32_t n;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 2);
    if (crt_mpr_array(&r, &n) != 0) {
        return CR_EPROTO;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if (crt_mpr_str(&r, &s, &len) != 0) {
            return CR_EPROTO;
        }
        fn(arg, s, len);
    }
    crt_mpr_leave(&r);
    return crt_mpr_finish(&r) == 0 ? 0 : CR_EPROTO;
}

cr_msg *
rm_stream_new(bool up, bool reconnect)
{
    cr_msg *m = cr_msg_new(RM_STREAM);
    if (m == NULL) {
        return NULL;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_array(pk, 2);
    up ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    reconnect ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

int
rm_stream_decode(const cr_msg *m, bool *up, bool *reconnect)
{
    crt_mpr r;
    uint32_t n;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 2);
    if (crt_mpr_array(&r, &n) != 0 || n != 2 || crt_mpr_bool(&r, up) != 0 ||
        crt_mpr_bool(&r, reconnect) != 0) {
        return CR_EPROTO;
    }
    crt_mpr_leave(&r);
    return crt_mpr_finish(&r) == 0 ? 0 : CR_EPROTO;
}

cr_msg *
rm_text_new(uint32_t type, const char *s)
{
    cr_msg *m = cr_msg_new(type);
    if (m == NULL) {
        return NULL;
    }
    pack_str(cr_msg_packer(m), s, strlen(s));
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

int
rm_text_decode(const cr_msg *m, rm_str *out)
{
    crt_mpr r;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 1);
    if (crt_mpr_str(&r, &out->p, &out->len) != 0) {
        return CR_EPROTO;
    }
    return crt_mpr_finish(&r) == 0 ? 0 : CR_EPROTO;
}

cr_msg *
rm_done_new(const char *ws, const char *id, uint64_t seq, int rc,
            const char *err)
{
    cr_msg *m = cr_msg_new(RM_DONE);
    if (m == NULL) {
        return NULL;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_array(pk, 5);
    pack_str(pk, ws, strlen(ws));
    pack_str(pk, id, strlen(id));
    msgpack_pack_uint64(pk, seq);
    msgpack_pack_int(pk, rc);
    err = err ? err : "";
    pack_str(pk, err, strlen(err));
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

int
rm_done_decode(const cr_msg *m, rm_str *ws, rm_str *id, uint64_t *seq,
               int *rc, rm_str *err)
{
    crt_mpr r;
    uint32_t n;
    int64_t v;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 2);
    if (crt_mpr_array(&r, &n) != 0 || n != 5 ||
        crt_mpr_str(&r, &ws->p, &ws->len) != 0 ||
        crt_mpr_str(&r, &id->p, &id->len) != 0 ||
        crt_mpr_uint(&r, seq) != 0 || crt_mpr_int(&r, &v) != 0 ||
        crt_mpr_str(&r, &err->p, &err->len) != 0) {
        return CR_EPROTO;
    }
    *rc = (int)v;
    crt_mpr_leave(&r);
    return crt_mpr_finish(&r) == 0 ? 0 : CR_EPROTO;
}

int
rm_call(cr_rt *rt, cr_id to, uint32_t type, const void *data, size_t len,
        int timeout_ms, cr_msg **reply)
{
    *reply = NULL;
    if (to == CR_NOBODY) {
        return CR_ENOENT;
    }
    cr_msg *q = cr_msg_new_bytes(type, data, len);
    if (q == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_call(rt, CR_NOBODY, to, q, timeout_ms, reply);
    if (rv != 0 && rv != CR_ETIMEDOUT) {
        cr_msg_free(q); /* not sent: still ours (on a timeout it was) */
    }
    return rv;
}

int
rm_query_struct(cr_rt *rt, const char *name, uint32_t type, int timeout_ms,
                void *out, size_t size)
{
    cr_msg *r;
    int rv = rm_call(rt, cr_whereis(rt, name), type, NULL, 0, timeout_ms, &r);
    if (rv != 0) {
        return rv;
    }
    if (cr_msg_len(r) != size) {
        cr_msg_free(r);
        return CR_EPROTO;
    }
    memcpy(out, cr_msg_data(r), size);
    cr_msg_free(r);
    return 0;
}
