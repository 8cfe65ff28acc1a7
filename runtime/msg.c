/*
 * msg.c - cr_msg (an owned envelope: header fields plus a growable
 * payload) and the envelope codec used by the mailbox batches.
 */
#include "msg.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int
reserve(cr_msg *m, size_t more)
{
    if (m->len + more <= m->cap) {
        return 0;
    }
    if (m->len + more < m->len) {
        return CR_ENOMEM;
    }
    size_t ncap = m->cap ? m->cap * 2 : 64;
    while (ncap < m->len + more) {
        ncap *= 2;
    }
    uint8_t *n = realloc(m->data, ncap);
    if (n == NULL) {
        return CR_ENOMEM;
    }
    m->data = n;
    m->cap = ncap;
    return 0;
}

cr_msg *
cr_msg_new(uint32_t type)
{
    cr_msg *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        m->type = type;
    }
    return m;
}

cr_msg *
cr_msg_new_bytes(uint32_t type, const void *data, size_t len)
{
    cr_msg *m = cr_msg_new(type);
    if (m != NULL && len > 0 && cr_msg_append(m, data, len) != 0) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

cr_msg *
cr_msg_dup(const cr_msg *src)
{
    cr_msg *m = cr_msg_new_bytes(src->type, src->data, src->len);
    if (m != NULL) {
        m->from = src->from;
        m->corr = src->corr;
    }
    return m;
}

void
cr_msg_free(cr_msg *m)
{
    if (m == NULL) {
        return;
    }
    assert(!m->borrowed && "cr_msg_free on a borrowed message");
    free(m->data);
    free(m);
}

int
cr_msg_append(cr_msg *m, const void *data, size_t len)
{
    assert(!m->borrowed);
    if (len == 0) {
        return 0;
    }
    if (reserve(m, len) != 0) {
        return CR_ENOMEM;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return 0;
}

static int
pk_write(void *data, const char *buf, size_t len)
{
    cr_msg *m = data;
    if (cr_msg_append(m, buf, len) != 0) {
        m->pk_failed = true;
        return -1;
    }
    return 0;
}

void *
cr_msg_packer(cr_msg *m)
{
    assert(!m->borrowed);
    if (!m->pk_init) {
        msgpack_packer_init(&m->pk, m, pk_write);
        m->pk_init = true;
    }
    return &m->pk;
}

bool
cr_msg_packer_failed(const cr_msg *m)
{
    return m->pk_failed;
}

uint32_t
cr_msg_type(const cr_msg *m)
{
    return m->type;
}

cr_id
cr_msg_from(const cr_msg *m)
{
    return m->from;
}

uint64_t
cr_msg_corr(const cr_msg *m)
{
    return m->corr;
}

const void *
cr_msg_data(const cr_msg *m)
{
    return m->data;
}

size_t
cr_msg_len(const cr_msg *m)
{
    return m->len;
}

void
cr_msg_set_type(cr_msg *m, uint32_t type)
{
    assert(!m->borrowed);
    m->type = type;
}

/* ---- envelope codec ---------------------------------------------- */

static size_t
put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        *p++ = (uint8_t)(v >> (8 * i));
    }
    return (size_t)bytes;
}

static size_t
put_uint(uint8_t *p, uint64_t v)
{
    if (v < 128) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v <= 0xff) {
        p[0] = 0xcc;
        return 1 + put_be(p + 1, v, 1);
    }
    if (v <= 0xffff) {
        p[0] = 0xcd;
        return 1 + put_be(p + 1, v, 2);
    }
    if (v <= 0xffffffffULL) {
        p[0] = 0xce;
        return 1 + put_be(p + 1, v, 4);
    }
    p[0] = 0xcf;
    return 1 + put_be(p + 1, v, 8);
}

size_t
cri_env_hdr(uint8_t *buf, uint32_t type, cr_id from, uint64_t corr,
            size_t len)
{
    size_t n = 0;
    buf[n++] = 0x94; /* fixarray of 4 */
    n += put_uint(buf + n, type);
    n += put_uint(buf + n, from);
    n += put_uint(buf + n, corr);
    if (len <= 0xff) {
        buf[n++] = 0xc4;
        n += put_be(buf + n, len, 1);
    } else if (len <= 0xffff) {
        buf[n++] = 0xc5;
        n += put_be(buf + n, len, 2);
    } else {
        buf[n++] = 0xc6;
        n += put_be(buf + n, len, 4);
    }
    return n;
}

static int
get_be(const uint8_t *buf, size_t size, size_t *pos, int bytes, uint64_t *v)
{
    if (size - *pos < (size_t)bytes) {
        return -1;
    }
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++) {
        x = (x << 8) | buf[*pos + (size_t)i];
    }
    *pos += (size_t)bytes;
    *v = x;
    return 0;
}

static int
get_uint(const uint8_t *buf, size_t size, size_t *pos, uint64_t *v)
{
    if (*pos >= size) {
        return -1;
    }
    uint8_t t = buf[(*pos)++];
    if (t < 0x80) {
        *v = t;
        return 0;
    }
    switch (t) {
    case 0xcc:
        return get_be(buf, size, pos, 1, v);
    case 0xcd:
        return get_be(buf, size, pos, 2, v);
    case 0xce:
        return get_be(buf, size, pos, 4, v);
    case 0xcf:
        return get_be(buf, size, pos, 8, v);
    default:
        return -1;
    }
}

int
cri_env_next(const uint8_t *buf, size_t size, size_t *pos, cri_env *out)
{
    size_t p = *pos;
    if (p >= size) {
        return 0;
    }
    if (buf[p++] != 0x94) {
        return -1;
    }
    uint64_t type, from, corr, len;
    if (get_uint(buf, size, &p, &type) != 0 || type > UINT32_MAX ||
        get_uint(buf, size, &p, &from) != 0 ||
        get_uint(buf, size, &p, &corr) != 0 || p >= size) {
        return -1;
    }
    int lb;
    switch (buf[p++]) {
    case 0xc4:
        lb = 1;
        break;
    case 0xc5:
        lb = 2;
        break;
    case 0xc6:
        lb = 4;
        break;
    default:
        return -1;
    }
    if (get_be(buf, size, &p, lb, &len) != 0 || len > size - p) {
        return -1;
    }
    out->type = (uint32_t)type;
    out->from = from;
    out->corr = corr;
    out->data = buf + p;
    out->len = (size_t)len;
    *pos = p + (size_t)len;
    return 1;
}

void
cri_msg_view(cr_msg *view, const cri_env *env)
{
    memset(view, 0, offsetof(cr_msg, pk));
    view->type = env->type;
    view->from = env->from;
    view->corr = env->corr;
    view->data = (uint8_t *)env->data; /* borrowed: never written */
    view->len = env->len;
    view->cap = env->len;
    view->borrowed = true;
}
