/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qabi.h - what preload.c offers a driver linked into preload.so.
 *
 * preload.c owns process start-up (it interposes __libc_start_main so that
 * QEMU's constructors run but QEMU's main does not), resolves the QEMU
 * functions listed in QABI_FUNCS into `qabi`, runs the module_call_init
 * phases, and then calls the driver's entry point:
 *
 *     int qabi_driver_main(int argc, char **argv);
 *
 * argv is the command line given after the QEMU binary.  It also interposes
 * glib's allocator (g_malloc and friends, g_free) and reports every call to
 * qabi_alloc_hook while it is non-NULL.
 */
#ifndef VMSTATE_HARNESS_QABI_H
#define VMSTATE_HARNESS_QABI_H

#include "abi-11.1.3.h"

struct qabi_fns {
#define QABI_FIELD(name, ret, args) ret (*name) args;
    QABI_FUNCS(QABI_FIELD)
#undef QABI_FIELD
};
extern struct qabi_fns qabi;

/* Look up vmstate_info_<name>; NULL if the binary has none. */
const VMStateInfo *qabi_info(const char *name);

enum qabi_alloc_kind {
    QABI_G_MALLOC, QABI_G_MALLOC0, QABI_G_TRY_MALLOC, QABI_G_TRY_MALLOC0,
    QABI_G_MALLOC_N, QABI_G_MALLOC0_N, QABI_G_TRY_MALLOC_N,
    QABI_G_TRY_MALLOC0_N, QABI_G_REALLOC, QABI_G_TRY_REALLOC,
    QABI_G_REALLOC_N, QABI_G_FREE,
};
extern const char *const qabi_alloc_names[];

/*
 * Called after each allocation (ptr = result, size = bytes requested,
 * old = previous block for realloc) and before each g_free (ptr = block).
 * caller is the return address into the code that called glib (e.g. inside
 * vmstate_load_vmsd).  The hook is per thread: threads that QEMU's
 * constructors start (RCU, ...) are not reported.  It runs with itself
 * disabled, so it may allocate.  Note g_free(NULL) calls (QEMUFile's fill
 * buffer frees a NULL fd array on every read).
 */
typedef void qabi_alloc_hook_fn(enum qabi_alloc_kind kind, void *ptr,
                                size_t size, void *old, void *caller);
extern __thread qabi_alloc_hook_fn *qabi_alloc_hook;

/*
 * Called before each allocation (not g_free) with the bytes requested,
 * while it is non-NULL (per thread, like the hook).  Returning false makes
 * the request fail without reaching glib: the g_try_* forms return NULL
 * (and report it to the hook), the others abort() as glib would (the gate
 * prints its own message first).  The engine uses it for its 1 GiB cap.
 */
typedef bool qabi_alloc_gate_fn(enum qabi_alloc_kind kind, size_t size);
extern __thread qabi_alloc_gate_fn *qabi_alloc_gate;

int qabi_driver_main(int argc, char **argv);

#endif
