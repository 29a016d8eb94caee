/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * driver-binary.c - vmstate-engine, binary flavour: the ABI layer (abi.h)
 * for Debian's QEMU 11.1.3 executable, linked into preload.so with proto.c.
 *
 * Tables are laid out with abi-11.1.3.h, QEMU is called through `qabi.*`
 * (resolved by preload.c), VMStateInfos are found with qabi_info(), and the
 * allocation ledger is fed by preload.c's glib interposition through
 * qabi_alloc_hook / qabi_alloc_gate, switched on around the vmstate call only.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qabi.h"
#include "proto.h"

/* ---- identity -------------------------------------------------------------- */

const char *abi_dialect(void)
{
    return "qemu-11.1";
}

const char *abi_qemu_version(void)
{
    return QABI_QEMU_VERSION;
}

uint32_t abi_build_flags(void)
{
    return 0;
}

/* ---- allocator events -------------------------------------------------------- */

static int ledger_code(enum qabi_alloc_kind kind)
{
    switch (kind) {
    case QABI_G_MALLOC: return VMSH_G_MALLOC;
    case QABI_G_MALLOC0: return VMSH_G_MALLOC0;
    case QABI_G_TRY_MALLOC: return VMSH_G_TRY_MALLOC;
    case QABI_G_TRY_MALLOC0: return VMSH_G_TRY_MALLOC0;
    case QABI_G_MALLOC_N: return VMSH_G_MALLOC_N;
    case QABI_G_MALLOC0_N: return VMSH_G_MALLOC0_N;
    /* No wire code of their own (vmstate.c does not call them). */
    case QABI_G_TRY_MALLOC_N: return VMSH_G_TRY_MALLOC;
    case QABI_G_TRY_MALLOC0_N: return VMSH_G_TRY_MALLOC0;
    case QABI_G_REALLOC:
    case QABI_G_TRY_REALLOC:
    case QABI_G_REALLOC_N: return VMSH_G_REALLOC;
    case QABI_G_FREE: return VMSH_G_FREE;
    }
    return VMSH_G_MALLOC;
}

static void on_alloc(enum qabi_alloc_kind kind, void *ptr, size_t size,
                     void *old, void *caller)
{
    (void)caller;
    switch (kind) {
    case QABI_G_FREE:
        vmsh_note_free(ptr);
        return;
    case QABI_G_REALLOC:
    case QABI_G_TRY_REALLOC:
    case QABI_G_REALLOC_N:
        /* As the source flavour: the old block's free, then the new block. */
        vmsh_note_free(old);
        break;
    default:
        break;
    }
    vmsh_note_alloc(ledger_code(kind), size, ptr);
}

/* The 1 GiB cap of PROTOCOL.md: g_malloc* abort, g_try_malloc* fail. */
static bool gate(enum qabi_alloc_kind kind, size_t size)
{
    bool try_kind = kind == QABI_G_TRY_MALLOC || kind == QABI_G_TRY_MALLOC0 ||
                    kind == QABI_G_TRY_MALLOC_N ||
                    kind == QABI_G_TRY_MALLOC0_N || kind == QABI_G_TRY_REALLOC;

    if (!vmsh_over_cap(size)) {
        return true;
    }
    if (!try_kind) {
        fprintf(stderr, "vmstate-engine: %s: failed to allocate %" PRIu64
                " bytes (GLib aborts)\n", qabi_alloc_names[kind],
                (uint64_t)size);
    }
    return false;
}

static void track(bool on)
{
    vmsh_tracking(on);
    qabi_alloc_hook = on ? on_alloc : NULL;
    qabi_alloc_gate = on ? gate : NULL;
}

/* ---- VMStateDescription tables --------------------------------------------- */

/* vmstate_info_* by QEMU's name ("int32 le", "uint64 equal", "buffer"...). */
static const VMStateInfo *info_named(const char *name)
{
    char sym[96];
    size_t i;
    const VMStateInfo *info;

    if (strlen(name) >= sizeof(sym)) {
        return NULL;
    }
    for (i = 0; name[i]; i++) {
        sym[i] = name[i] == ' ' ? '_' : name[i];
    }
    sym[i] = 0;
    info = qabi_info(sym);
    if (info && info->name && !strcmp(info->name, name)) {
        return info;
    }
#define TRY_INFO(n)                                               \
    info = qabi_info(#n);                                         \
    if (info && info->name && !strcmp(info->name, name)) {        \
        return info;                                              \
    }
    QABI_INFOS(TRY_INFO)
#undef TRY_INFO
    return NULL;
}

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
    tab_vmsds = calloc(d->n_vmsds ? d->n_vmsds : 1, sizeof(VMStateDescription));
    tab_n = d->n_vmsds;
    for (uint32_t i = 0; i < d->n_vmsds; i++) {
        const VmshVmsd *v = &d->vmsds[i];
        VMStateDescription *t = &tab_vmsds[i];
        VMStateField *fs = calloc((size_t)v->n_fields + 1, sizeof(VMStateField));

        t->name = v->name;
        t->version_id = v->version_id;
        t->minimum_version_id = v->minimum_version_id;
        t->needed = vmsh_needed_fn(&v->needed, v->version_id);
        t->fields = fs;
        for (uint32_t j = 0; j < v->n_fields; j++) {
            const VmshField *f = &v->fields[j];
            VMStateField *tf = &fs[j];

            tf->name = f->name;
            tf->offset = f->offset;
            tf->size = f->size;
            tf->num = f->num;
            tf->num_indirect.offset = f->num_ind_offset;
            tf->num_indirect.size = f->num_ind_size;
            tf->size_indirect.offset = f->size_ind_offset;
            tf->size_indirect.size = f->size_ind_size;
            if (f->info[0]) {
                tf->info = info_named(f->info);
                if (!tf->info) {
                    snprintf(err, errlen, "unknown info \"%s\"", f->info);
                    return NULL;   /* freed by abi_tables_free */
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
    QIOChannelFile *ioc = qabi.qio_channel_file_new_fd(dup(fd));
    QEMUFile *f = output ? qabi.qemu_file_new_output((QIOChannel *)ioc)
                         : qabi.qemu_file_new_input((QIOChannel *)ioc);

    qabi.object_unref(ioc);     /* the QEMUFile holds its own reference */
    return f;
}

/* Takes the error text and frees the Error, leaving it out of the ledger. */
static void take_error(Error **err, char **message)
{
    if (*err) {
        *message = strdup(qabi.error_get_pretty(*err));
        vmsh_ledger_drop_begin();
        qabi.error_free(*err);
        vmsh_ledger_drop_end();
        *err = NULL;
    }
}

int abi_save(void *root, void *opaque, int fd, int *file_error, char **message)
{
    QEMUFile *f = file_on(fd, true);
    Error *err = NULL;
    int ret;

    track(true);
    ret = qabi.vmstate_save_state(f, root, opaque, NULL, &err);
    take_error(&err, message);
    track(false);
    qabi.qemu_fflush(f);
    *file_error = qabi.qemu_file_get_error(f);
    qabi.qemu_fclose(f);
    return ret;
}

int abi_load(void *root, void *opaque, int version_id, int fd, int *file_error,
             int64_t *remaining, char **message)
{
    QEMUFile *f = file_on(fd, false);
    Error *err = NULL;
    int ret;

    track(true);
    ret = qabi.vmstate_load_state(f, root, opaque, version_id, &err);
    take_error(&err, message);
    track(false);
    *file_error = qabi.qemu_file_get_error(f);
    *remaining = -1;
    if (!*file_error) {
        int64_t n = 0;
        for (;;) {
            qabi.qemu_get_byte(f);
            if (qabi.qemu_file_get_error(f)) {
                break;
            }
            n++;
        }
        *remaining = n;
    }
    qabi.qemu_fclose(f);
    return ret;
}

/* preload.c has resolved `qabi` and run the module init phases. */
int qabi_driver_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return vmsh_serve();
}
