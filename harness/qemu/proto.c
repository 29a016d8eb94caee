/*
 * vmstate-engine: the ABI-neutral core. Frames on stdin/stdout (PROTOCOL.md),
 * memory images with relocations, the field_exists/needed callback family,
 * and the allocation ledger fed by the ABI layer's allocator interposition.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VMSH_SANITIZE
#define VMSH_SANITIZE 0
#endif

#if VMSH_SANITIZE
int __lsan_do_recoverable_leak_check(void);
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "report_objects=1";
}
#endif

/*
 * Pointers the driver keeps for itself are stored XORed so that
 * LeakSanitizer does not count them as references.
 */
#define HIDE(p) ((uintptr_t)(p) ^ (uintptr_t)0x5a5a5a5a5a5a5a5aull)
#define SHOW(x) ((void *)((x) ^ (uintptr_t)0x5a5a5a5a5a5a5a5aull))

static void die(const char *msg)
{
    fprintf(stderr, "vmstate-engine: %s\n", msg);
    exit(2);
}

/* ---- byte buffers ---------------------------------------------------------- */

typedef struct Buf {
    uint8_t *p;
    size_t len, cap;
} Buf;

static void buf_put(Buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        if (!b->p) {
            die("out of memory");
        }
        b->cap = cap;
    }
    if (n) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
}
static void put_u8(Buf *b, uint8_t v) { buf_put(b, &v, 1); }
static void put_u32(Buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void put_i32(Buf *b, int32_t v) { buf_put(b, &v, 4); }
static void put_u64(Buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void put_str(Buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    buf_put(b, s, n);
}

typedef struct Cur {
    const uint8_t *p;
    size_t left;
    const char *bad; /* first decoding error */
} Cur;

static const uint8_t *take(Cur *c, size_t n)
{
    if (c->bad || c->left < n) {
        if (!c->bad) {
            c->bad = "request truncated";
        }
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}
static uint8_t get_u8(Cur *c) { const uint8_t *p = take(c, 1); return p ? *p : 0; }
static uint32_t get_u32(Cur *c)
{
    uint32_t v = 0;
    const uint8_t *p = take(c, 4);
    if (p) {
        memcpy(&v, p, 4);
    }
    return v;
}
static int32_t get_i32(Cur *c) { return (int32_t)get_u32(c); }
static uint64_t get_u64(Cur *c)
{
    uint64_t v = 0;
    const uint8_t *p = take(c, 8);
    if (p) {
        memcpy(&v, p, 8);
    }
    return v;
}
static char *get_str(Cur *c)
{
    uint32_t n = get_u32(c);
    const uint8_t *p = take(c, n);
    char *s = malloc((size_t)n + 1);
    if (!s) {
        die("out of memory");
    }
    if (p) {
        memcpy(s, p, n);
    }
    s[p ? n : 0] = 0;
    return s;
}
/* A count of items of at least `min` bytes each that must fit in the rest. */
static uint32_t get_count(Cur *c, size_t min)
{
    uint32_t n = get_u32(c);
    if (!c->bad && (uint64_t)n * min > c->left) {
        c->bad = "count larger than the request";
        return 0;
    }
    return n;
}

/* ---- frames ---------------------------------------------------------------- */

static int out_fd = 1;

static int read_full(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = read(fd, q, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

static void write_full(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t r = write(fd, q, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            exit(3); /* the client went away */
        }
        q += r;
        n -= (size_t)r;
    }
}

static void send_frame(const Buf *b)
{
    uint32_t n = (uint32_t)b->len;
    write_full(out_fd, &n, 4);
    write_full(out_fd, b->p, b->len);
}

/* ---- the allocation ledger --------------------------------------------------- */

typedef struct Event {
    uint8_t allocator;
    bool dropped;   /* an Error's own allocation, left out of the reply */
    uint64_t size;
    uintptr_t xaddr;
} Event;

typedef struct Live {
    uintptr_t xaddr;
    uint32_t event; /* index of the allocating event */
    bool live;
} Live;

typedef struct Object {
    uintptr_t xbase;
    uint64_t len;
    bool freed;
} Object;

static bool tracking;
static bool dropping;
static Event *events;
static size_t n_events, cap_events;
static Live *lives;
static size_t n_lives, cap_lives;
static Object *objects;
static uint32_t n_objects;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) {
        c *= 2;
    }
    p = realloc(p, c * elem);
    if (!p) {
        die("out of memory");
    }
    *cap = c;
    return p;
}

bool vmsh_over_cap(uint64_t size)
{
    return size > VMSH_ALLOC_CAP;
}

static size_t add_event(int allocator, uint64_t size, void *p)
{
    events = grow(events, &cap_events, n_events + 1, sizeof(Event));
    events[n_events] = (Event){ (uint8_t)allocator, dropping, size, HIDE(p) };
    return n_events++;
}

void vmsh_note_alloc(int allocator, uint64_t size, void *p)
{
    if (!tracking) {
        return;
    }
    size_t e = add_event(allocator, size, p);
    if (p) {
        lives = grow(lives, &cap_lives, n_lives + 1, sizeof(Live));
        lives[n_lives++] = (Live){ HIDE(p), (uint32_t)e, true };
    }
}

void vmsh_note_free(void *p)
{
    if (!tracking || !p) {
        return;
    }
    uintptr_t x = HIDE(p);
    for (size_t i = n_lives; i-- > 0;) {
        if (lives[i].live && lives[i].xaddr == x) {
            lives[i].live = false;
            add_event(VMSH_G_FREE, events[lives[i].event].size, p);
            if (dropping) {
                events[lives[i].event].dropped = true;
            }
            return;
        }
    }
    for (uint32_t i = 0; i < n_objects; i++) {
        if (!objects[i].freed && objects[i].xbase == x) {
            objects[i].freed = true;
            add_event(VMSH_G_FREE, objects[i].len, p);
            return;
        }
    }
    /* Memory the ledger never saw (glib-internal strings): not reported. */
}

void vmsh_ledger_drop_begin(void) { dropping = true; }
void vmsh_ledger_drop_end(void) { dropping = false; }

static void ledger_reset(void)
{
    n_events = 0;
    n_lives = 0;
}

/* ---- requests ---------------------------------------------------------------- */

static void get_rule(Cur *c, VmshRule *r)
{
    r->kind = get_u8(c);
    r->arg = get_u8(c);
    r->offset = get_u64(c);
    r->n = get_i32(c);
}

static void desc_free(VmshDesc *d)
{
    for (uint32_t i = 0; i < d->n_vmsds; i++) {
        VmshVmsd *v = &d->vmsds[i];
        free(v->name);
        free(v->subs);
        for (uint32_t j = 0; j < v->n_fields; j++) {
            free(v->fields[j].name);
            free(v->fields[j].info);
        }
        free(v->fields);
    }
    free(d->vmsds);
    memset(d, 0, sizeof(*d));
}

static void get_desc(Cur *c, VmshDesc *d)
{
    d->n_vmsds = get_count(c, 22);
    d->vmsds = calloc(d->n_vmsds ? d->n_vmsds : 1, sizeof(VmshVmsd));
    for (uint32_t i = 0; i < d->n_vmsds && !c->bad; i++) {
        VmshVmsd *v = &d->vmsds[i];
        v->name = get_str(c);
        v->version_id = get_i32(c);
        v->minimum_version_id = get_i32(c);
        v->terminator_flags = get_u32(c);
        get_rule(c, &v->needed);
        v->n_subs = get_count(c, 4);
        v->subs = calloc(v->n_subs ? v->n_subs : 1, sizeof(int32_t));
        for (uint32_t j = 0; j < v->n_subs; j++) {
            v->subs[j] = get_i32(c);
            if (!c->bad && (v->subs[j] < 0 || (uint32_t)v->subs[j] >= d->n_vmsds)) {
                c->bad = "subsection index out of range";
            }
        }
        v->n_fields = get_count(c, 60);
        v->fields = calloc(v->n_fields ? v->n_fields : 1, sizeof(VmshField));
        for (uint32_t j = 0; j < v->n_fields && !c->bad; j++) {
            VmshField *f = &v->fields[j];
            f->name = get_str(c);
            f->offset = get_u64(c);
            f->size = get_u64(c);
            f->num = get_i32(c);
            f->num_ind_offset = get_u32(c);
            f->num_ind_size = get_u8(c);
            f->size_ind_offset = get_u32(c);
            f->size_ind_size = get_u8(c);
            f->info = get_str(c);
            f->vmsd = get_i32(c);
            f->version_id = get_i32(c);
            f->struct_version_id = get_i32(c);
            f->flags = get_u32(c);
            get_rule(c, &f->exists);
            if (!c->bad && (f->vmsd < -1 || f->vmsd >= (int32_t)d->n_vmsds)) {
                c->bad = "field vmsd index out of range";
            }
        }
    }
    d->root = get_u32(c);
    if (!c->bad && d->root >= d->n_vmsds) {
        c->bad = "root vmsd index out of range";
    }
}

static void objects_free(void)
{
    for (uint32_t i = 0; i < n_objects; i++) {
        if (!objects[i].freed) {
            free(SHOW(objects[i].xbase));
        }
    }
    for (size_t i = 0; i < n_lives; i++) {
        if (lives[i].live) {
            free(SHOW(lives[i].xaddr));
        }
    }
    free(objects);
    objects = NULL;
    n_objects = 0;
    ledger_reset();
}

/* Reads objects and relocations; returns the opaque pointer or NULL. */
static void *get_memory(Cur *c)
{
    n_objects = get_count(c, 8);
    objects = calloc(n_objects ? n_objects : 1, sizeof(Object));
    for (uint32_t i = 0; i < n_objects && !c->bad; i++) {
        uint64_t len = get_u64(c);
        const uint8_t *p = take(c, len);
        if (!p) {
            n_objects = i;
            break;
        }
        void *o = malloc(len ? len : 0);
        if (!o) {
            o = malloc(1);
        }
        if (!o) {
            die("out of memory");
        }
        memcpy(o, p, len);
        objects[i] = (Object){ HIDE(o), len, false };
    }
    uint32_t n_relocs = get_count(c, 24);
    for (uint32_t i = 0; i < n_relocs && !c->bad; i++) {
        uint32_t obj = get_u32(c);
        uint64_t off = get_u64(c);
        uint32_t tgt = get_u32(c);
        uint64_t toff = get_u64(c);
        if (c->bad) {
            break;
        }
        if (obj >= n_objects || tgt >= n_objects || off > objects[obj].len ||
            objects[obj].len - off < 8) {
            c->bad = "relocation out of range";
            break;
        }
        uint64_t v = (uint64_t)(uintptr_t)SHOW(objects[tgt].xbase) + toff;
        memcpy((uint8_t *)SHOW(objects[obj].xbase) + off, &v, 8);
    }
    uint32_t oobj = get_u32(c);
    uint64_t ooff = get_u64(c);
    if (c->bad) {
        return NULL;
    }
    if (oobj >= n_objects) {
        c->bad = "opaque object out of range";
        return NULL;
    }
    return (uint8_t *)SHOW(objects[oobj].xbase) + ooff;
}

static int memfd_with(const uint8_t *p, size_t n)
{
    int fd = memfd_create("vmsh", MFD_CLOEXEC);
    if (fd < 0) {
        die("memfd_create failed");
    }
    size_t off = 0;
    while (off < n) {
        ssize_t r = write(fd, p + off, n - off);
        if (r <= 0) {
            die("memfd write failed");
        }
        off += (size_t)r;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void put_events(Buf *b)
{
    uint32_t n = 0;
    for (size_t i = 0; i < n_events; i++) {
        n += !events[i].dropped;
    }
    put_u32(b, n);
    for (size_t i = 0; i < n_events; i++) {
        if (events[i].dropped) {
            continue;
        }
        put_u8(b, events[i].allocator);
        put_u64(b, events[i].size);
        put_u64(b, (uint64_t)(uintptr_t)SHOW(events[i].xaddr));
    }
}

/* Index of event `e` among the events that are reported. */
static uint32_t reported_index(size_t e)
{
    uint32_t n = 0;
    for (size_t i = 0; i < e; i++) {
        n += !events[i].dropped;
    }
    return n;
}

static void put_objects(Buf *b)
{
    uint32_t n = n_objects;
    for (size_t i = 0; i < n_lives; i++) {
        n += lives[i].live && !events[lives[i].event].dropped;
    }
    put_u32(b, n);
    for (uint32_t i = 0; i < n_objects; i++) {
        put_u8(b, 0);
        put_u32(b, i);
        put_u8(b, 0xff);
        put_u8(b, objects[i].freed);
        put_u64(b, (uint64_t)(uintptr_t)SHOW(objects[i].xbase));
        put_u64(b, objects[i].freed ? 0 : objects[i].len);
        if (!objects[i].freed) {
            buf_put(b, SHOW(objects[i].xbase), objects[i].len);
        }
    }
    for (size_t i = 0; i < n_lives; i++) {
        const Event *e = &events[lives[i].event];
        if (!lives[i].live || e->dropped) {
            continue;
        }
        put_u8(b, 1);
        put_u32(b, reported_index(lives[i].event));
        put_u8(b, e->allocator);
        put_u8(b, 0);
        put_u64(b, (uint64_t)(uintptr_t)SHOW(lives[i].xaddr));
        put_u64(b, e->size);
        buf_put(b, SHOW(lives[i].xaddr), e->size);
    }
}

#if VMSH_SANITIZE
/*
 * What stays visible to LeakSanitizer during the check: the root object,
 * and every prepared object that was not reachable from the root before the
 * op (found by the same conservative word scan LSan does). Everything else
 * LSan must find through real pointers.
 */
static void *volatile vmsh_lsan_root;
static void **vmsh_lsan_extra;
static size_t vmsh_lsan_n_extra;
static bool *pre_reach;

static int object_holding(uint64_t v)
{
    for (uint32_t j = 0; j < n_objects; j++) {
        uint64_t b = (uint64_t)(uintptr_t)SHOW(objects[j].xbase);
        if (v >= b && v < b + (objects[j].len ? objects[j].len : 1)) {
            return (int)j;
        }
    }
    return -1;
}

/* Marks the prepared objects reachable from `opaque` before the op. */
static void lsan_before(void *opaque)
{
    free(pre_reach);
    pre_reach = calloc(n_objects ? n_objects : 1, sizeof(bool));
    uint32_t *work = calloc(n_objects ? n_objects : 1, sizeof(uint32_t));
    size_t top = 0;
    int r = object_holding((uint64_t)(uintptr_t)opaque);
    if (r >= 0) {
        pre_reach[r] = true;
        work[top++] = (uint32_t)r;
    }
    while (top) {
        uint32_t i = work[--top];
        const uint8_t *b = SHOW(objects[i].xbase);
        for (uint64_t k = 0; k + 8 <= objects[i].len; k += 8) {
            uint64_t v;
            memcpy(&v, b + k, 8);
            int j = object_holding(v);
            if (j >= 0 && !pre_reach[j]) {
                pre_reach[j] = true;
                work[top++] = (uint32_t)j;
            }
        }
    }
    free(work);
}

static int lsan_check(char **text)
{
    int saved = dup(2);
    int fd = memfd_create("vmsh-lsan", MFD_CLOEXEC);
    fflush(stderr);
    dup2(fd, 2);
    int leaks = __lsan_do_recoverable_leak_check();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat st;
    fstat(fd, &st);
    *text = calloc(1, (size_t)st.st_size + 1);
    if (pread(fd, *text, (size_t)st.st_size, 0) < 0) {
        (*text)[0] = 0;
    }
    close(fd);
    return leaks;
}
#endif

static void handle(const uint8_t *req, size_t len)
{
    Cur c = { req, len, NULL };
    VmshDesc d = { 0 };
    Buf out = { 0 };
    char err[256] = "";
    uint8_t op = get_u8(&c);

    get_desc(&c, &d);
    void *opaque = get_memory(&c);
    int32_t version_id = 0;
    const uint8_t *stream = NULL;
    uint64_t stream_len = 0;
    if (op == VMSH_OP_LOAD) {
        version_id = get_i32(&c);
        stream_len = get_u64(&c);
        stream = take(&c, stream_len);
    } else if (op != VMSH_OP_SAVE && !c.bad) {
        c.bad = "unknown op";
    }
    if (!c.bad && c.left) {
        c.bad = "trailing bytes in request";
    }
    if (!c.bad && vmsh_rules_in(&d) > VMSH_SLOTS) {
        c.bad = "too many field_exists/needed rules";
    }
    void *root = NULL;
    vmsh_rules_reset();
    if (!c.bad) {
        root = abi_tables_build(&d, err, sizeof(err));
        if (!root) {
            c.bad = err;
        }
    }
    if (c.bad) {
        put_u8(&out, 1);
        put_str(&out, c.bad);
        send_frame(&out);
        free(out.p);
        abi_tables_free();
        objects_free();
        desc_free(&d);
        return;
    }

    int ret, file_error = 0;
    int64_t remaining = -1, consumed = -1;
    char *message = NULL;
    Buf saved = { 0 };
    int fd;
    if (op == VMSH_OP_SAVE) {
        fd = memfd_with(NULL, 0);
        ret = abi_save(root, opaque, fd, &file_error, &message);
        struct stat st;
        fstat(fd, &st);
        saved.p = malloc((size_t)st.st_size + 1);
        saved.len = (size_t)st.st_size;
        if (pread(fd, saved.p, saved.len, 0) != (ssize_t)saved.len) {
            die("memfd read failed");
        }
        close(fd);
    } else {
        fd = memfd_with(stream, stream_len);
#if VMSH_SANITIZE
        lsan_before(opaque);
#endif
        ret = abi_load(root, opaque, version_id, fd, &file_error, &remaining, &message);
        close(fd);
        consumed = remaining < 0 ? -1 : (int64_t)stream_len - remaining;
    }

    /*
     * LeakSanitizer runs before the reply is built: the reply holds the
     * objects' addresses in plain form, which LSan would count as references.
     */
    uint8_t lsan_flag = 0;
    char *lsan_text = NULL;
#if VMSH_SANITIZE
    if (op == VMSH_OP_LOAD) {
        vmsh_lsan_root = opaque;
        vmsh_lsan_extra = calloc(n_objects ? n_objects : 1, sizeof(void *));
        vmsh_lsan_n_extra = 0;
        for (uint32_t i = 0; i < n_objects; i++) {
            if (!pre_reach[i] && !objects[i].freed) {
                vmsh_lsan_extra[vmsh_lsan_n_extra++] = SHOW(objects[i].xbase);
            }
        }
        lsan_flag = lsan_check(&lsan_text) ? 2 : 1;
        vmsh_lsan_root = NULL;
        free(vmsh_lsan_extra);
        vmsh_lsan_extra = NULL;
    }
#endif

    put_u8(&out, 0);
    put_i32(&out, ret);
    put_i32(&out, file_error);
    put_str(&out, message ? message : "");
    put_u64(&out, saved.len);
    buf_put(&out, saved.p, saved.len);
    put_u64(&out, (uint64_t)consumed);
    if (op == VMSH_OP_LOAD) {
        put_objects(&out);
    } else {
        put_u32(&out, 0);
    }
    put_events(&out);
    put_u8(&out, lsan_flag);
    put_str(&out, lsan_text ? lsan_text : "");
    free(lsan_text);
    send_frame(&out);
    free(out.p);
    free(saved.p);
    free(message);
    abi_tables_free();
    objects_free();
    desc_free(&d);
}

void vmsh_tracking(bool on)
{
    tracking = on;
}

int vmsh_serve(void)
{
    /* Our frames own the real stdout; stray prints go to stderr. */
    out_fd = dup(1);
    if (out_fd < 0 || dup2(2, 1) < 0) {
        die("cannot set up stdout");
    }

    Buf hello = { 0 };
    put_u32(&hello, VMSH_MAGIC);
    put_u32(&hello, VMSH_PROTOCOL_VERSION);
    put_str(&hello, abi_dialect());
    put_str(&hello, abi_qemu_version());
    put_u32(&hello, abi_build_flags());
    send_frame(&hello);
    free(hello.p);

    for (;;) {
        uint32_t n;
        if (read_full(0, &n, 4) < 0) {
            return 0;
        }
        uint8_t *req = malloc(n ? n : 1);
        if (!req) {
            die("request too large");
        }
        if (read_full(0, req, n) < 0) {
            die("request truncated on stdin");
        }
        handle(req, n);
        free(req);
    }
}
