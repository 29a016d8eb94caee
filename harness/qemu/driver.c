/*
 * vmstate-engine, source flavour: the ABI layer (abi.h) over QEMU's own
 * headers and static libraries (migration, io, qemuutil), linked the way
 * tests/unit/test-vmstate is. build.sh passes:
 *
 *   VMSH_STRUCT_MEMBER  1 if VMStateField has num_indirect/size_indirect
 *                       (VMStateStructMember), 0 for num_offset/size_offset
 *   VMSH_LOAD_ERRP      1 if vmstate_load_state takes Error **errp
 *   VMSH_SAVE_ERRP      1 if vmstate_save_state takes Error **errp
 *   VMSH_SAVE_WITH_ERR  defined if vmstate_save_state_with_err exists (10.0)
 *   VMSH_DIALECT_ID     0 "qemu-10.x", 1 "qemu-11.1", 2 "qemu-master"
 *   VMSH_SANITIZE       1 in --sanitize builds
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "migration/vmstate.h"
#include "migration/qemu-file-types.h"
#include "../migration/qemu-file.h"
#include "qemu/module.h"
#include "io/channel-file.h"
#include "qapi/error.h"

#include "proto.h"

/* ---- allocator interposition (-Wl,--wrap=...) ------------------------------ */

void *__real_g_malloc(gsize n);
void *__real_g_malloc0(gsize n);
void *__real_g_try_malloc(gsize n);
void *__real_g_try_malloc0(gsize n);
void *__real_g_malloc_n(gsize blocks, gsize size);
void *__real_g_malloc0_n(gsize blocks, gsize size);
void *__real_g_realloc(gpointer mem, gsize n);
void __real_g_free(gpointer mem);
void *__wrap_g_malloc(gsize n);
void *__wrap_g_malloc0(gsize n);
void *__wrap_g_try_malloc(gsize n);
void *__wrap_g_try_malloc0(gsize n);
void *__wrap_g_malloc_n(gsize blocks, gsize size);
void *__wrap_g_malloc0_n(gsize blocks, gsize size);
void *__wrap_g_realloc(gpointer mem, gsize n);
void __wrap_g_free(gpointer mem);

static G_NORETURN void alloc_abort(const char *fn, uint64_t n)
{
    /* What GLib does on a failed g_malloc: g_error(), then abort. */
    fprintf(stderr, "vmstate-engine: %s: failed to allocate %" PRIu64
            " bytes (GLib aborts)\n", fn, n);
    abort();
}

static uint64_t product(gsize a, gsize b)
{
    uint64_t r;
    return __builtin_mul_overflow((uint64_t)a, (uint64_t)b, &r) ? UINT64_MAX : r;
}

void *__wrap_g_malloc(gsize n)
{
    if (vmsh_over_cap(n)) {
        alloc_abort("g_malloc", n);
    }
    void *p = __real_g_malloc(n);
    vmsh_note_alloc(VMSH_G_MALLOC, n, p);
    return p;
}

void *__wrap_g_malloc0(gsize n)
{
    if (vmsh_over_cap(n)) {
        alloc_abort("g_malloc0", n);
    }
    void *p = __real_g_malloc0(n);
    vmsh_note_alloc(VMSH_G_MALLOC0, n, p);
    return p;
}

void *__wrap_g_try_malloc(gsize n)
{
    void *p = vmsh_over_cap(n) ? NULL : __real_g_try_malloc(n);
    vmsh_note_alloc(VMSH_G_TRY_MALLOC, n, p);
    return p;
}

void *__wrap_g_try_malloc0(gsize n)
{
    void *p = vmsh_over_cap(n) ? NULL : __real_g_try_malloc0(n);
    vmsh_note_alloc(VMSH_G_TRY_MALLOC0, n, p);
    return p;
}

void *__wrap_g_malloc_n(gsize blocks, gsize size)
{
    uint64_t n = product(blocks, size);
    if (vmsh_over_cap(n)) {
        alloc_abort("g_malloc_n", n);
    }
    void *p = __real_g_malloc_n(blocks, size);
    vmsh_note_alloc(VMSH_G_MALLOC_N, n, p);
    return p;
}

void *__wrap_g_malloc0_n(gsize blocks, gsize size)
{
    uint64_t n = product(blocks, size);
    if (vmsh_over_cap(n)) {
        alloc_abort("g_malloc0_n", n);
    }
    void *p = __real_g_malloc0_n(blocks, size);
    vmsh_note_alloc(VMSH_G_MALLOC0_N, n, p);
    return p;
}

void *__wrap_g_realloc(gpointer mem, gsize n)
{
    if (vmsh_over_cap(n)) {
        alloc_abort("g_realloc", n);
    }
    vmsh_note_free(mem);
    void *p = __real_g_realloc(mem, n);
    vmsh_note_alloc(VMSH_G_REALLOC, n, p);
    return p;
}

void __wrap_g_free(gpointer mem)
{
    vmsh_note_free(mem);
    __real_g_free(mem);
}

/* ---- identity -------------------------------------------------------------- */

const char *abi_dialect(void)
{
    static const char *const names[] = { "qemu-10.x", "qemu-11.1", "qemu-master" };
    return names[VMSH_DIALECT_ID];
}

const char *abi_qemu_version(void)
{
    return QEMU_VERSION;
}

uint32_t abi_build_flags(void)
{
    return VMSH_SANITIZE ? 1 : 0;
}

/* ---- VMStateDescription tables --------------------------------------------- */

static const VMStateInfo *const infos[] = {
    &vmstate_info_bool,
    &vmstate_info_int8,
    &vmstate_info_int16,
    &vmstate_info_int32,
    &vmstate_info_int64,
    &vmstate_info_uint8,
    &vmstate_info_uint16,
    &vmstate_info_uint32,
    &vmstate_info_uint64,
    &vmstate_info_int32_equal,
    &vmstate_info_uint8_equal,
    &vmstate_info_uint16_equal,
    &vmstate_info_uint32_equal,
    &vmstate_info_uint64_equal,
    &vmstate_info_int32_le,
    &vmstate_info_buffer,
    &vmstate_info_unused_buffer,
};

static VMStateDescription *tab_vmsds;
static uint32_t tab_n;

void abi_tables_free(void)
{
    for (uint32_t i = 0; i < tab_n; i++) {
        free((void *)tab_vmsds[i].fields);
        free((void *)tab_vmsds[i].subsections);
    }
    free(tab_vmsds);
    tab_vmsds = NULL;
    tab_n = 0;
}

void *abi_tables_build(const VmshDesc *d, char *err, size_t errlen)
{
    abi_tables_free();
    tab_vmsds = calloc(d->n_vmsds, sizeof(VMStateDescription));
    tab_n = d->n_vmsds;
    for (uint32_t i = 0; i < d->n_vmsds; i++) {
        const VmshVmsd *v = &d->vmsds[i];
        VMStateDescription *t = &tab_vmsds[i];
        t->name = v->name;
        t->version_id = v->version_id;
        t->minimum_version_id = v->minimum_version_id;
        t->needed = vmsh_needed_fn(&v->needed, v->version_id);

        VMStateField *fs = calloc((size_t)v->n_fields + 1, sizeof(VMStateField));
        for (uint32_t j = 0; j < v->n_fields; j++) {
            const VmshField *f = &v->fields[j];
            VMStateField *tf = &fs[j];
            tf->name = f->name;
            tf->offset = f->offset;
            tf->size = f->size;
            tf->num = f->num;
#if VMSH_STRUCT_MEMBER
            tf->num_indirect.offset = f->num_ind_offset;
            tf->num_indirect.size = f->num_ind_size;
            tf->size_indirect.offset = f->size_ind_offset;
            tf->size_indirect.size = f->size_ind_size;
#else
            tf->num_offset = f->num_ind_offset;
            tf->size_offset = f->size_ind_offset;
#endif
            tf->info = NULL;
            if (f->info[0]) {
                for (size_t k = 0; k < ARRAY_SIZE(infos); k++) {
                    if (!strcmp(infos[k]->name, f->info)) {
                        tf->info = infos[k];
                    }
                }
                if (!tf->info) {
                    snprintf(err, errlen, "unknown info \"%s\"", f->info);
                    free(fs);
                    return NULL;
                }
            }
            tf->flags = (enum VMStateFlags)f->flags;
            tf->vmsd = f->vmsd < 0 ? NULL : &tab_vmsds[f->vmsd];
            tf->version_id = f->version_id;
            tf->struct_version_id = f->struct_version_id;
            tf->field_exists = vmsh_exists_fn(&f->exists);
        }
        /* VMSTATE_END_OF_LIST(), with the terminator flags as given. */
        fs[v->n_fields].flags = (enum VMStateFlags)v->terminator_flags;
        t->fields = fs;

        if (v->n_subs) {
            const VMStateDescription **subs =
                calloc((size_t)v->n_subs + 1, sizeof(*subs));
            for (uint32_t j = 0; j < v->n_subs; j++) {
                subs[j] = &tab_vmsds[v->subs[j]];
            }
            t->subsections = subs;
        }
    }
    return &tab_vmsds[d->root];
}

/* ---- save and load --------------------------------------------------------- */

static QEMUFile *file_on(int fd, bool output)
{
    QIOChannel *ioc = QIO_CHANNEL(qio_channel_file_new_fd(dup(fd)));
    QEMUFile *f = output ? qemu_file_new_output(ioc) : qemu_file_new_input(ioc);
    object_unref(OBJECT(ioc));
    return f;
}

/* Takes the error text and frees the Error, leaving it out of the ledger. */
static void take_error(Error **err, char **message)
{
    if (*err) {
        *message = strdup(error_get_pretty(*err));
        vmsh_ledger_drop_begin();
        error_free(*err);
        vmsh_ledger_drop_end();
        *err = NULL;
    }
}

int abi_save(void *root, void *opaque, int fd, int *file_error, char **message)
{
    QEMUFile *f = file_on(fd, true);
    Error *err = NULL;
    int ret;

    vmsh_tracking(true);
#if VMSH_SAVE_ERRP
    ret = vmstate_save_state(f, root, opaque, NULL, &err);
#elif defined(VMSH_SAVE_WITH_ERR)
    ret = vmstate_save_state_with_err(f, root, opaque, NULL, &err);
#else
    ret = vmstate_save_state(f, root, opaque, NULL);
#endif
    take_error(&err, message);
    vmsh_tracking(false);
    qemu_fflush(f);
    *file_error = qemu_file_get_error(f);
    qemu_fclose(f);
    return ret;
}

int abi_load(void *root, void *opaque, int version_id, int fd, int *file_error,
             int64_t *remaining, char **message)
{
    QEMUFile *f = file_on(fd, false);
    Error *err = NULL;
    int ret;

    vmsh_tracking(true);
#if VMSH_LOAD_ERRP
    ret = vmstate_load_state(f, root, opaque, version_id, &err);
#else
    ret = vmstate_load_state(f, root, opaque, version_id);
#endif
    take_error(&err, message);
    vmsh_tracking(false);
    *file_error = qemu_file_get_error(f);
    *remaining = -1;
    if (!*file_error) {
        int64_t n = 0;
        for (;;) {
            qemu_get_byte(f);
            if (qemu_file_get_error(f)) {
                break;
            }
            n++;
        }
        *remaining = n;
    }
    qemu_fclose(f);
    return ret;
}

int main(void)
{
    module_call_init(MODULE_INIT_QOM);
    return vmsh_serve();
}
