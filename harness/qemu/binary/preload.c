/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * preload.c - run a vmstate driver inside Debian's QEMU 11.1.3 binary.
 *
 *   chroot CHROOT /lib64/ld-linux-x86-64.so.2 --preload /PATH/preload.so \
 *       /usr/bin/qemu-system-x86_64 [driver arguments]
 *
 * The executable calls __libc_start_main (GLIBC_2.34) from _start.  A
 * preloaded, unversioned definition wins the lookup, so ours is called: it
 * hands the real one our own main.  glibc then runs the executable's
 * constructors (QOM type and module registration, RCU thread, ...) and calls
 * qabi_main instead of QEMU's main.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qabi.h"

struct qabi_fns qabi;
__thread qabi_alloc_hook_fn *qabi_alloc_hook;
__thread qabi_alloc_gate_fn *qabi_alloc_gate;

const char *const qabi_alloc_names[] = {
    [QABI_G_MALLOC] = "g_malloc", [QABI_G_MALLOC0] = "g_malloc0",
    [QABI_G_TRY_MALLOC] = "g_try_malloc",
    [QABI_G_TRY_MALLOC0] = "g_try_malloc0",
    [QABI_G_MALLOC_N] = "g_malloc_n", [QABI_G_MALLOC0_N] = "g_malloc0_n",
    [QABI_G_TRY_MALLOC_N] = "g_try_malloc_n",
    [QABI_G_TRY_MALLOC0_N] = "g_try_malloc0_n",
    [QABI_G_REALLOC] = "g_realloc", [QABI_G_TRY_REALLOC] = "g_try_realloc",
    [QABI_G_REALLOC_N] = "g_realloc_n", [QABI_G_FREE] = "g_free",
};

static void *must_sym(void *handle, const char *name)
{
    void *p = dlsym(handle, name);

    if (!p) {
        fprintf(stderr, "qabi: symbol %s not found: %s\n", name, dlerror());
        abort();
    }
    return p;
}

const VMStateInfo *qabi_info(const char *name)
{
    char sym[128];

    snprintf(sym, sizeof(sym), "vmstate_info_%s", name);
    return dlsym(RTLD_DEFAULT, sym);
}

/* ---- glib allocator interposition ------------------------------------- */

/*
 * QEMU calls these through its PLT; the preloaded object comes first in the
 * global lookup scope, so its definitions are bound.  The real functions are
 * found with RTLD_NEXT (libglib-2.0.so.0).
 */
static __thread int in_hook;

#define report(kind, ptr, size, old) \
    report_(kind, ptr, size, old, __builtin_return_address(0))

static void report_(enum qabi_alloc_kind kind, void *ptr, size_t size,
                    void *old, void *caller)
{
    qabi_alloc_hook_fn *hook = qabi_alloc_hook;

    if (hook && !in_hook) {
        in_hook = 1;
        hook(kind, ptr, size, old, caller);
        in_hook = 0;
    }
}

/* false: the request must fail (see qabi_alloc_gate in qabi.h). */
static bool gate(enum qabi_alloc_kind kind, size_t size)
{
    qabi_alloc_gate_fn *g = qabi_alloc_gate;
    bool ok = true;

    if (g && !in_hook) {
        in_hook = 1;
        ok = g(kind, size);
        in_hook = 0;
    }
    return ok;
}

/* The allocation refused by the gate: NULL for g_try_*, abort otherwise. */
static void *refused(bool try)
{
    if (!try) {
        abort();
    }
    return NULL;
}

static size_t mul_sat(size_t a, size_t b)
{
    size_t r;

    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

#define REAL(name, ret, args)                                       \
    static ret (*real_##name) args;                                 \
    if (!real_##name) {                                             \
        real_##name = (ret (*) args)must_sym(RTLD_NEXT, #name);     \
    }

void *g_malloc(size_t n)
{
    REAL(g_malloc, void *, (size_t));
    void *p = gate(QABI_G_MALLOC, n) ? real_g_malloc(n) : refused(false);
    report(QABI_G_MALLOC, p, n, NULL);
    return p;
}

void *g_malloc0(size_t n)
{
    REAL(g_malloc0, void *, (size_t));
    void *p = gate(QABI_G_MALLOC0, n) ? real_g_malloc0(n) : refused(false);
    report(QABI_G_MALLOC0, p, n, NULL);
    return p;
}

void *g_try_malloc(size_t n)
{
    REAL(g_try_malloc, void *, (size_t));
    void *p = gate(QABI_G_TRY_MALLOC, n) ? real_g_try_malloc(n) : refused(true);
    report(QABI_G_TRY_MALLOC, p, n, NULL);
    return p;
}

void *g_try_malloc0(size_t n)
{
    REAL(g_try_malloc0, void *, (size_t));
    void *p = gate(QABI_G_TRY_MALLOC0, n) ? real_g_try_malloc0(n) : refused(true);
    report(QABI_G_TRY_MALLOC0, p, n, NULL);
    return p;
}

void *g_malloc_n(size_t n, size_t m)
{
    REAL(g_malloc_n, void *, (size_t, size_t));
    void *p = gate(QABI_G_MALLOC_N, mul_sat(n, m)) ? real_g_malloc_n(n, m) : refused(false);
    report(QABI_G_MALLOC_N, p, mul_sat(n, m), NULL);
    return p;
}

void *g_malloc0_n(size_t n, size_t m)
{
    REAL(g_malloc0_n, void *, (size_t, size_t));
    void *p = gate(QABI_G_MALLOC0_N, mul_sat(n, m)) ? real_g_malloc0_n(n, m) : refused(false);
    report(QABI_G_MALLOC0_N, p, mul_sat(n, m), NULL);
    return p;
}

void *g_try_malloc_n(size_t n, size_t m)
{
    REAL(g_try_malloc_n, void *, (size_t, size_t));
    void *p = gate(QABI_G_TRY_MALLOC_N, mul_sat(n, m)) ? real_g_try_malloc_n(n, m) : refused(true);
    report(QABI_G_TRY_MALLOC_N, p, mul_sat(n, m), NULL);
    return p;
}

void *g_try_malloc0_n(size_t n, size_t m)
{
    REAL(g_try_malloc0_n, void *, (size_t, size_t));
    void *p = gate(QABI_G_TRY_MALLOC0_N, mul_sat(n, m)) ? real_g_try_malloc0_n(n, m) : refused(true);
    report(QABI_G_TRY_MALLOC0_N, p, mul_sat(n, m), NULL);
    return p;
}

void *g_realloc(void *old, size_t n)
{
    REAL(g_realloc, void *, (void *, size_t));
    void *p = gate(QABI_G_REALLOC, n) ? real_g_realloc(old, n) : refused(false);
    report(QABI_G_REALLOC, p, n, old);
    return p;
}

void *g_try_realloc(void *old, size_t n)
{
    REAL(g_try_realloc, void *, (void *, size_t));
    void *p = gate(QABI_G_TRY_REALLOC, n) ? real_g_try_realloc(old, n) : refused(true);
    report(QABI_G_TRY_REALLOC, p, n, old);
    return p;
}

void *g_realloc_n(void *old, size_t n, size_t m)
{
    REAL(g_realloc_n, void *, (void *, size_t, size_t));
    void *p = gate(QABI_G_REALLOC_N, mul_sat(n, m)) ? real_g_realloc_n(old, n, m) : refused(false);
    report(QABI_G_REALLOC_N, p, mul_sat(n, m), old);
    return p;
}

void g_free(void *p)
{
    REAL(g_free, void, (void *));
    report(QABI_G_FREE, p, 0, NULL);
    real_g_free(p);
}

/* ---- start-up ---------------------------------------------------------- */

static int qabi_main(int argc, char **argv, char **envp)
{
    (void)envp;
#define QABI_RESOLVE(name, ret, args) \
    qabi.name = (ret (*) args)must_sym(RTLD_DEFAULT, #name);
    QABI_FUNCS(QABI_RESOLVE)
#undef QABI_RESOLVE

    /*
     * The phases 11.1.3's qemu_init/qemu_init_subsystems run, minus the
     * machine: TARGET_INFO and target_info_qom_set_target() (QOM types may
     * depend on the target), TRACE, QOM (TYPE_QIO_CHANNEL_FILE etc.), and
     * MIGRATION.  OPTS and BLOCK are not needed for vmstate.
     */
    qabi.module_call_init(QABI_MODULE_INIT_TARGET_INFO);
    qabi.target_info_qom_set_target();
    qabi.module_call_init(QABI_MODULE_INIT_TRACE);
    qabi.module_call_init(QABI_MODULE_INIT_QOM);
    qabi.module_call_init(QABI_MODULE_INIT_MIGRATION);

    return qabi_driver_main(argc, argv);
}

typedef int main_fn(int, char **, char **);
typedef int libc_start_main_fn(main_fn *main, int argc, char **argv,
                               void (*init)(void), void (*fini)(void),
                               void (*rtld_fini)(void), void *stack_end);

int __libc_start_main(main_fn *main, int argc, char **argv,
                      void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end)
{
    libc_start_main_fn *real =
        (libc_start_main_fn *)must_sym(RTLD_NEXT, "__libc_start_main");

    (void)main;
    return real(qabi_main, argc, argv, init, fini, rtld_fini, stack_end);
}
