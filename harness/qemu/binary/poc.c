/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * poc.c - proof of concept driver for preload.so: builds VMStateDescription
 * tables at run time in 11.1.3's layout, saves and loads them with the
 * binary's own vmstate_save_state / vmstate_load_state, and runs the small
 * experiments recorded in FACTS-11.1.3.md.
 *
 *   qemu-system-x86_64 [all | poc | aborts | facts | NAME...]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qabi.h"

#define INFO(n) qabi_info(#n)

/* ---- streams ------------------------------------------------------------ */

struct result {
    int ret;
    char err[512];
    unsigned char *bytes;   /* save: the stream */
    size_t len;             /* save: its length; load: bytes consumed */
};

static QEMUFile *file_on(int fd, bool output)
{
    QIOChannelFile *ioc = qabi.qio_channel_file_new_fd(fd);
    QEMUFile *f = output ? qabi.qemu_file_new_output((QIOChannel *)ioc)
                         : qabi.qemu_file_new_input((QIOChannel *)ioc);

    qabi.object_unref(ioc);     /* the QEMUFile holds its own reference */
    return f;
}

static void take_error(struct result *r, Error *err)
{
    r->err[0] = 0;
    if (err) {
        snprintf(r->err, sizeof(r->err), "%s", qabi.error_get_pretty(err));
        qabi.error_free(err);
    }
}

static JSONWriter *save_vmdesc;     /* if set, save() describes into it */

static struct result save(const VMStateDescription *vmsd, void *obj)
{
    struct result r = { 0 };
    Error *err = NULL;
    int fd = memfd_create("save", 0);
    QEMUFile *f = file_on(dup(fd), true);
    off_t end;

    r.ret = qabi.vmstate_save_state(f, vmsd, obj, save_vmdesc, &err);
    qabi.qemu_fflush(f);
    if (!r.ret) {
        r.ret = qabi.qemu_file_get_error(f);
    }
    qabi.qemu_fclose(f);
    take_error(&r, err);
    end = lseek(fd, 0, SEEK_END);
    r.len = end > 0 ? (size_t)end : 0;
    r.bytes = malloc(r.len + 1);
    if (pread(fd, r.bytes, r.len, 0) != (ssize_t)r.len) {
        perror("pread");
    }
    close(fd);
    return r;
}

/*
 * Load LEN bytes followed by one sentinel byte 0x7e (QEMU_VM_SECTION_FOOTER).
 * Without a byte after the data, the subsection peek at the end of every
 * (nested) vmstate_load_vmsd hits EOF, which sets -EIO on the file, and the
 * enclosing field loop then fails with "stream error: -5".
 * consumed = bytes read from LEN (the sentinel is never consumed).
 */
static qabi_alloc_hook_fn *load_hook;

static struct result load(const VMStateDescription *vmsd, void *obj,
                          const void *bytes, size_t len)
{
    struct result r = { 0 };
    Error *err = NULL;
    int fd = memfd_create("load", 0);
    QEMUFile *f;
    size_t rest = 0;

    if (write(fd, bytes, len) != (ssize_t)len || write(fd, "\x7e", 1) != 1) {
        perror("write");
    }
    lseek(fd, 0, SEEK_SET);
    f = file_on(dup(fd), false);
    qabi_alloc_hook = load_hook;
    r.ret = qabi.vmstate_load_state(f, vmsd, obj, vmsd->version_id, &err);
    qabi_alloc_hook = NULL;
    take_error(&r, err);
    /* consumed = len - what is still readable (qemu_file_transferred
     * asserts on input files) */
    if (!qabi.qemu_file_get_error(f)) {
        for (;;) {
            qabi.qemu_get_byte(f);
            if (qabi.qemu_file_get_error(f)) {
                break;
            }
            rest++;
        }
        r.len = len + 1 - rest;
    } else {
        r.len = (size_t)-1;     /* stream error: unknown */
    }
    qabi.qemu_fclose(f);
    close(fd);
    return r;
}

static void hex(const char *label, const unsigned char *b, size_t n)
{
    printf("%s (%zu bytes):", label, n);
    for (size_t i = 0; i < n; i++) {
        printf(" %02x", b[i]);
    }
    printf("\n");
}

static void show_load(const struct result *r)
{
    if (r->len == (size_t)-1) {
        printf("  load ret=%d consumed=? (stream error)", r->ret);
    } else {
        printf("  load ret=%d consumed=%zu", r->ret, r->len);
    }
    printf("%s%s\n", r->err[0] ? " error: " : "", r->err);
}

/* ---- allocation log ------------------------------------------------------ */

static void print_alloc(enum qabi_alloc_kind kind, void *ptr, size_t size,
                        void *old, void *caller)
{
    Dl_info di;
    char where[160] = "?";

    (void)old;
    if (dladdr(caller, &di) && di.dli_fbase) {
        snprintf(where, sizeof(where), "%s+%#lx",
                 di.dli_sname ? di.dli_sname : strrchr(di.dli_fname, '/') + 1,
                 (unsigned long)((char *)caller -
                                 (char *)(di.dli_sname ? di.dli_saddr
                                                       : di.dli_fbase)));
    }
    if (kind == QABI_G_FREE) {
        printf("  [heap] g_free(%p)  from %s\n", ptr, where);
    } else {
        printf("  [heap] %s(%zu) = %p  from %s\n", qabi_alloc_names[kind],
               size, ptr, where);
    }
}

/* ---- run a step in a child, report how it ended ------------------------ */

static void in_child(const char *what, void (*fn)(void *), void *arg)
{
    int pipefd[2];
    pid_t pid;
    int status;
    char buf[4096];
    ssize_t n;
    size_t got = 0;

    fflush(stdout);
    if (pipe(pipefd)) {
        perror("pipe");
        return;
    }
    pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    close(pipefd[1]);
    while ((n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
        got += n;
    }
    buf[got] = 0;
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        printf("  %s: child killed by signal %d (%s)\n", what,
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        printf("  %s: child exit %d\n", what, WEXITSTATUS(status));
    }
    if (got) {
        char *line = strtok(buf, "\n");
        while (line) {
            printf("  stderr: %s\n", line);
            line = strtok(NULL, "\n");
        }
    }
}

/* ---- the proof-of-concept VMSD ----------------------------------------- */

typedef struct Elem {
    uint32_t x;
    uint8_t y;
} Elem;

typedef struct Obj {
    uint32_t a;
    uint8_t n16;
    uint16_t v[8];
    Elem *p[4];
    uint8_t nq;
    Elem **q;
} Obj;

static VMStateField elem_fields[3];
static VMStateDescription vmsd_elem;
static VMStateField obj_fields[5];
static VMStateDescription vmsd_obj;

static void build_vmsds(void)
{
    elem_fields[0] = (VMStateField){
        .name = "x", .offset = offsetof(Elem, x), .size = 4,
        .info = INFO(uint32), .flags = VMS_SINGLE,
    };
    elem_fields[1] = (VMStateField){
        .name = "y", .offset = offsetof(Elem, y), .size = 1,
        .info = INFO(uint8), .flags = VMS_SINGLE,
    };
    elem_fields[2] = (VMStateField){ .flags = VMS_END };
    vmsd_elem = (VMStateDescription){
        .name = "elem", .version_id = 1, .minimum_version_id = 1,
        .fields = elem_fields,
    };

    obj_fields[0] = (VMStateField){
        .name = "a", .offset = offsetof(Obj, a), .size = 4,
        .info = INFO(uint32), .flags = VMS_SINGLE,
    };
    obj_fields[1] = (VMStateField){       /* VMSTATE_VARRAY_UINT8 of uint16 */
        .name = "v", .offset = offsetof(Obj, v), .size = 2,
        .num_indirect = { offsetof(Obj, n16), 1 },
        .info = INFO(uint16), .flags = VMS_VARRAY_UINT8,
    };
    obj_fields[2] = (VMStateField){       /* array of 4 pointers to Elem */
        .name = "p", .offset = offsetof(Obj, p), .num = 4,
        .vmsd = &vmsd_elem,
        .flags = VMS_ARRAY | VMS_ARRAY_OF_POINTER | VMS_STRUCT,
    };
    obj_fields[3] = (VMStateField){       /* like NVMe aer_reqs, 0x1044a */
        .name = "q", .offset = offsetof(Obj, q), .size = sizeof(Elem),
        .num_indirect = { offsetof(Obj, nq), 1 }, .vmsd = &vmsd_elem,
        .flags = VMS_POINTER | VMS_STRUCT | VMS_ARRAY_OF_POINTER |
                 VMS_VARRAY_UINT8 | VMS_ARRAY_OF_POINTER_AUTO_ALLOC,
    };
    obj_fields[4] = (VMStateField){ .flags = VMS_END };
    vmsd_obj = (VMStateDescription){
        .name = "poc", .version_id = 1, .minimum_version_id = 1,
        .fields = obj_fields,
    };
}

static void print_elem(const char *label, const Elem *e)
{
    if (e) {
        printf("    %s = %p {x=%#x, y=%#x}\n", label, (void *)e, e->x, e->y);
    } else {
        printf("    %s = NULL\n", label);
    }
}

static void print_obj(const Obj *o)
{
    char label[16];

    printf("    a = %#x, n16 = %u, v = {", o->a, o->n16);
    for (int i = 0; i < 8; i++) {
        printf("%s%u", i ? ", " : "", o->v[i]);
    }
    printf("}\n");
    for (int i = 0; i < 4; i++) {
        snprintf(label, sizeof(label), "p[%d]", i);
        print_elem(label, o->p[i]);
    }
    printf("    nq = %u, q = %p\n", o->nq, (void *)o->q);
    for (int i = 0; o->q && i < o->nq; i++) {
        snprintf(label, sizeof(label), "q[%d]", i);
        print_elem(label, o->q[i]);
    }
}

static Elem e0 = { 0xa0, 1 }, e2 = { 0xa2, 3 }, e3 = { 0xb0, 4 },
            e4 = { 0xb2, 6 };
static Elem *src_q[3] = { &e3, NULL, &e4 };
static struct result poc_stream;

static void fresh_dest(Obj *d, Elem *d0, Elem *d2, Elem **dq)
{
    memset(d, 0, sizeof(*d));
    memset(d0, 0, sizeof(*d0));
    memset(d2, 0, sizeof(*d2));
    d->n16 = 3;             /* counts are configuration, not on the wire */
    d->p[0] = d0;           /* non-AUTO_ALLOC: load goes through existing */
    d->p[2] = d2;           /* pointers, NULL slots expect a 0x30 marker */
    d->nq = 3;
    dq[0] = dq[1] = dq[2] = NULL;   /* AUTO_ALLOC: all slots NULL */
    d->q = dq;
}

static void run_poc(void)
{
    Obj src = {
        .a = 0x11223344, .n16 = 3, .v = { 1, 2, 0x303 },
        .p = { &e0, NULL, &e2, NULL }, .nq = 3, .q = src_q,
    };
    Obj dst;
    Elem d0, d2, *dq[3];
    struct result r;

    printf("== poc: save\n");
    print_obj(&src);
    poc_stream = save(&vmsd_obj, &src);
    printf("  save ret=%d%s%s\n", poc_stream.ret,
           poc_stream.err[0] ? " error: " : "", poc_stream.err);
    hex("  bytes", poc_stream.bytes, poc_stream.len);
    printf("  layout: a(4) | v: 3 x be16 | p[0] elem(5) | p[1] 30 |"
           " p[2] elem(5) | p[3] 30 | q[0] 31 elem | q[1] 30 | q[2] 31 elem\n");

    save_vmdesc = qabi.json_writer_new(false);
    qabi.json_writer_start_object(save_vmdesc, NULL);
    r = save(&vmsd_obj, &src);
    qabi.json_writer_end_object(save_vmdesc);
    printf("  save with vmdesc: ret=%d, same bytes: %s\n  vmdesc: %s\n", r.ret,
           r.len == poc_stream.len &&
           !memcmp(r.bytes, poc_stream.bytes, r.len) ? "yes" : "NO",
           qabi.json_writer_get(save_vmdesc));
    qabi.json_writer_free(save_vmdesc);
    save_vmdesc = NULL;

    printf("== poc: load into a fresh object (heap log on)\n");
    fresh_dest(&dst, &d0, &d2, dq);
    load_hook = print_alloc;
    r = load(&vmsd_obj, &dst, poc_stream.bytes, poc_stream.len);
    load_hook = NULL;
    show_load(&r);
    print_obj(&dst);
}

/* ---- abort demonstrations ---------------------------------------------- */

static void child_autoalloc_nonnull(void *arg)
{
    Obj dst;
    Elem d0, d2, *dq[3], stale = { 0xdead, 0 };
    struct result r;

    (void)arg;
    fresh_dest(&dst, &d0, &d2, dq);
    dq[1] = &stale;         /* a non-NULL slot in the AUTO_ALLOC array */
    r = load(&vmsd_obj, &dst, poc_stream.bytes, poc_stream.len);
    show_load(&r);
}

static void child_31_nonauto(void *arg)
{
    Obj dst;
    Elem d0, d2, *dq[3];
    unsigned char *b = malloc(poc_stream.len);
    struct result r;

    (void)arg;
    memcpy(b, poc_stream.bytes, poc_stream.len);
    /* p[1]'s NULL marker sits after a(4) + v(6) + p[0](5) */
    printf("  byte at offset 15: %#x -> 0x31\n", b[15]);
    b[15] = 0x31;
    fresh_dest(&dst, &d0, &d2, dq);
    r = load(&vmsd_obj, &dst, b, poc_stream.len);
    show_load(&r);
}

static void child_32_marker(void *arg)
{
    Obj dst;
    Elem d0, d2, *dq[3];
    unsigned char *b = malloc(poc_stream.len);
    struct result r;

    (void)arg;
    memcpy(b, poc_stream.bytes, poc_stream.len);
    b[15] = 0x32;
    fresh_dest(&dst, &d0, &d2, dq);
    r = load(&vmsd_obj, &dst, b, poc_stream.len);
    show_load(&r);
}

static void run_aborts(void)
{
    if (!poc_stream.bytes) {
        run_poc();
    }
    printf("== abort: AUTO_ALLOC load into a non-NULL slot (q[1])\n");
    in_child("autoalloc-nonnull", child_autoalloc_nonnull, NULL);
    printf("== abort: 0x31 marker in a non-AUTO_ALLOC array of pointers"
           " (p[1])\n");
    in_child("marker-31-nonauto", child_31_nonauto, NULL);
    printf("== error: 0x32 marker in the same place\n");
    in_child("marker-32", child_32_marker, NULL);
}

/* ---- single-field experiments ------------------------------------------ */

/*
 * A scratch object: a 64-bit count/size member at 0, a pointer at 8, and an
 * inline buffer at 16.  Each experiment builds one field over it.
 */
typedef struct Scratch {
    uint64_t count;
    void *ptr;
    unsigned char buf[512];
    unsigned char guard[64];
} Scratch;

static VMStateField one_fields[2];
static VMStateDescription one_vmsd;

static const VMStateDescription *one(VMStateField f)
{
    one_fields[0] = f;
    one_fields[1] = (VMStateField){ .flags = VMS_END };
    one_vmsd = (VMStateDescription){
        .name = "exp", .version_id = 1, .minimum_version_id = 1,
        .fields = one_fields,
    };
    return &one_vmsd;
}

static unsigned char stream[4096];

static void count_bytes(const char *what, const unsigned char *b, size_t n,
                        unsigned char val)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        k += b[i] == val;
    }
    printf("  %s: %zu of %zu bytes are %#x\n", what, k, n, val);
}

struct exp {
    const char *name;
    const char *what;
    void (*fn)(void *);
    bool child;
};

static void exp_u32_ffffffff_null(void *arg)
{
    Scratch s = { .count = 0xffffffff, .ptr = NULL };
    struct result r;

    (void)arg;
    memset(stream, 0xaa, 16);
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 1,
        .num_indirect = { offsetof(Scratch, count), 4 },
        .info = INFO(uint8), .flags = VMS_VARRAY_UINT32 | VMS_POINTER,
    }), &s, stream, 16);
    show_load(&r);
}

static void exp_u32_ffffffff_buf(void *arg)
{
    Scratch s = { .count = 0xffffffff };
    struct result r;

    (void)arg;
    s.ptr = s.buf;
    memset(stream, 0xaa, 16);
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 1,
        .num_indirect = { offsetof(Scratch, count), 4 },
        .info = INFO(uint8), .flags = VMS_VARRAY_UINT32 | VMS_POINTER,
    }), &s, stream, 16);
    show_load(&r);
    count_bytes("buf", s.buf, 32, 0xaa);
}

static void exp_varray_width(uint32_t flag, uint8_t width, uint64_t count,
                             size_t avail)
{
    Scratch s = { .count = count };
    struct result r;

    memset(stream, 0x5a, avail);
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, buf), .size = 1,
        .num_indirect = { offsetof(Scratch, count), width },
        .info = INFO(uint8), .flags = flag,
    }), &s, stream, avail);
    printf("  flags=%#x num_indirect.size=%u count=%#llx stream=%zu:\n",
           flag, width, (unsigned long long)count, avail);
    show_load(&r);
    count_bytes("buf", s.buf, sizeof(s.buf), 0x5a);
}

static void exp_u8_200(void *arg)
{
    (void)arg;
    exp_varray_width(VMS_VARRAY_UINT8, 1, 200, 300);
}

static void exp_width_from_member(void *arg)
{
    (void)arg;
    /* flag says UINT8, member width says 2: count 0x101 = 257 */
    exp_varray_width(VMS_VARRAY_UINT8, 2, 0x101, 300);
    /* flag says UINT32, member width 1: a count of 0x105 reads as 5 */
    exp_varray_width(VMS_VARRAY_UINT32, 1, 0x105, 300);
}

static void exp_0x80(void *arg)
{
    (void)arg;
    exp_varray_width(0x80, 2, 7, 300);
}

static void exp_int32_negative(void *arg)
{
    (void)arg;
    /* VARRAY_INT32 with 0xfffffffe: -2 as int32, 4294967294 unsigned */
    exp_varray_width(VMS_VARRAY_INT32, 4, 0xfffffffe, 300);
}

static void exp_width3(void *arg)
{
    (void)arg;
    exp_varray_width(VMS_VARRAY_UINT8, 3, 5, 300);
}

static void exp_array_num_neg(void *arg)
{
    Scratch s = { 0 };
    struct result r;

    (void)arg;
    memset(stream, 0x5a, 300);
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, buf), .size = 1, .num = -1,
        .info = INFO(uint8), .flags = VMS_ARRAY,
    }), &s, stream, 300);
    show_load(&r);
    count_bytes("buf", s.buf, sizeof(s.buf), 0x5a);
}

static void exp_vbuffer(uint8_t width, uint64_t sz, size_t mult,
                        size_t avail)
{
    Scratch s = { .count = sz };
    struct result r;

    memset(stream, 0x77, avail);
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, buf), .size = mult,
        .size_indirect = { offsetof(Scratch, count), width },
        .info = INFO(buffer), .flags = VMS_VBUFFER | VMS_MULTIPLY,
    }), &s, stream, avail);
    printf("  VBUFFER|MULTIPLY size_indirect.size=%u value=%#llx"
           " field->size=%#zx stream=%zu:\n", width, (unsigned long long)sz,
           mult, avail);
    show_load(&r);
    count_bytes("buf", s.buf, sizeof(s.buf), 0x77);
}

static void exp_vbuffer_wrap64(void *arg)
{
    (void)arg;
    /* 0x8000000000000001 * 2 = 2 (mod 2^64) */
    exp_vbuffer(8, 0x8000000000000001ull, 2, 8);
}

static void exp_vbuffer_no32wrap(void *arg)
{
    (void)arg;
    /* 0x80000001 * 2 = 0x100000002: 2 if it wrapped at 32 bits */
    exp_vbuffer(4, 0x80000001ull, 2, 8);
}

static void exp_alloc(void *arg)
{
    Scratch s = { .count = 16, .ptr = NULL };
    struct result r;

    (void)arg;
    memset(stream, 0x66, 16);
    load_hook = print_alloc;
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 1,
        .size_indirect = { offsetof(Scratch, count), 4 },
        .info = INFO(buffer),
        .flags = VMS_VBUFFER | VMS_POINTER | VMS_ALLOC,
    }), &s, stream, 16);
    load_hook = NULL;
    show_load(&r);
    printf("  ptr=%p\n", s.ptr);
}

static void exp_alloc_huge(void *arg)
{
    Scratch s = { .count = 1ull << 62, .ptr = NULL };
    struct result r;

    (void)arg;
    load_hook = print_alloc;
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 1,
        .size_indirect = { offsetof(Scratch, count), 8 },
        .info = INFO(buffer),
        .flags = VMS_VBUFFER | VMS_POINTER | VMS_ALLOC,
    }), &s, stream, 16);
    load_hook = NULL;
    show_load(&r);
}

static void exp_alloc_wrap0(void *arg)
{
    Scratch s = { .count = 1ull << 63, .ptr = NULL };
    struct result r;

    (void)arg;
    load_hook = print_alloc;
    r = load(one((VMStateField){     /* n = 2^63 elements of size 2 */
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 2,
        .num_indirect = { offsetof(Scratch, count), 8 },
        .info = INFO(uint16),
        .flags = VMS_VARRAY_UINT32 | VMS_POINTER | VMS_ALLOC,
    }), &s, stream, 16);
    load_hook = NULL;
    show_load(&r);
}

static void exp_autoalloc_size(void *arg)
{
    /* one slot, field->size 40 (the element struct is 8 bytes) */
    Scratch s = { .count = 1 };
    Elem *slot = NULL;
    static const unsigned char b[] = { 0x31, 0, 0, 0, 7, 9 };
    struct result r;

    (void)arg;
    s.ptr = &slot;
    load_hook = print_alloc;
    r = load(one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, ptr), .size = 40,
        .num_indirect = { offsetof(Scratch, count), 1 }, .vmsd = &vmsd_elem,
        .flags = VMS_POINTER | VMS_STRUCT | VMS_ARRAY_OF_POINTER |
                 VMS_VARRAY_UINT8 | VMS_ARRAY_OF_POINTER_AUTO_ALLOC,
    }), &s, b, sizeof(b));
    load_hook = NULL;
    show_load(&r);
    print_elem("slot", slot);
}

static void exp_size_int(void *arg)
{
    Scratch s = { 0 };
    struct result r;
    const VMStateDescription *vmsd;

    (void)arg;
    memcpy(stream, "\x01\x02\x03", 3);
    vmsd = one((VMStateField){
        .name = "f", .offset = offsetof(Scratch, buf), .size = 0x100000001ull,
        .num = 3, .info = INFO(uint8), .flags = VMS_ARRAY,
    });
    r = load(vmsd, &s, stream, 3);
    show_load(&r);
    hex("  buf[0..7] after load", s.buf, 8);
    memcpy(s.buf, "\x11\x22\x33\x44", 4);
    r = save(vmsd, &s);
    printf("  save ret=%d\n", r.ret);
    hex("  saved", r.bytes, r.len);
}

static const struct exp exps[] = {
    { "count-u32-ffffffff-null", "VARRAY_UINT32|POINTER, count 0xffffffff,"
      " NULL base, 16 stream bytes", exp_u32_ffffffff_null, true },
    { "count-u32-ffffffff-buf", "VARRAY_UINT32|POINTER, count 0xffffffff,"
      " base = 512-byte buffer, 16 stream bytes", exp_u32_ffffffff_buf, true },
    { "count-u8-200", "VARRAY_UINT8, count 200", exp_u8_200, true },
    { "count-width", "count width comes from num_indirect.size, not the flag",
      exp_width_from_member, true },
    { "count-0x80", "flag 0x80 with a uint16 count of 7", exp_0x80, true },
    { "count-int32-neg", "VARRAY_INT32 with count 0xfffffffe",
      exp_int32_negative, true },
    { "count-width3", "num_indirect.size = 3", exp_width3, true },
    { "array-num-neg", "VMS_ARRAY with num = -1", exp_array_num_neg, true },
    { "vbuffer-wrap64", "VBUFFER|MULTIPLY product wraps mod 2^64",
      exp_vbuffer_wrap64, true },
    { "vbuffer-no32wrap", "VBUFFER|MULTIPLY product does not wrap at 32 bits",
      exp_vbuffer_no32wrap, true },
    { "alloc", "POINTER|ALLOC|VBUFFER of 16 bytes: which allocator",
      exp_alloc, true },
    { "alloc-huge", "POINTER|ALLOC|VBUFFER of 2^62 bytes", exp_alloc_huge,
      true },
    { "alloc-wrap0", "POINTER|ALLOC VARRAY n=2^63 x size 2 (product 0)",
      exp_alloc_wrap0, true },
    { "autoalloc-size", "AUTO_ALLOC element allocation size (field->size 40)",
      exp_autoalloc_size, true },
    { "size-int", "ARRAY of 3 uint8 with field->size 0x100000001",
      exp_size_int, true },
};

static void run_exp(const struct exp *e)
{
    printf("== %s: %s\n", e->name, e->what);
    in_child(e->name, e->fn, NULL);
}

int qabi_driver_main(int argc, char **argv)
{
    bool all = argc < 2 || !strcmp(argv[1], "all");

    setvbuf(stdout, NULL, _IOLBF, 0);
    build_vmsds();
    printf("qabi: QEMU %s ABI; vmstate_save_state=%p vmstate_load_state=%p\n",
           QABI_QEMU_VERSION, (void *)qabi.vmstate_save_state,
           (void *)qabi.vmstate_load_state);
    for (int i = all ? 0 : 1; i < (all ? 1 : argc); i++) {
        const char *a = all ? "all" : argv[i];
        bool any = !strcmp(a, "all");

        if (any || !strcmp(a, "poc")) {
            run_poc();
        }
        if (any || !strcmp(a, "aborts")) {
            run_aborts();
        }
        for (size_t k = 0; k < sizeof(exps) / sizeof(exps[0]); k++) {
            if (any || !strcmp(a, "facts") || !strcmp(a, exps[k].name)) {
                run_exp(&exps[k]);
            }
        }
    }
    return 0;
}
