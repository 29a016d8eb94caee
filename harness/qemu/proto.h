/*
 * vmstate-engine: the ABI-neutral core (protocol, memory images, rules,
 * allocation ledger). See PROTOCOL.md. Nothing here includes QEMU headers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMSH_PROTO_H
#define VMSH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMSH_MAGIC 0x48534d56u /* "VMSH" */
#define VMSH_PROTOCOL_VERSION 1u

enum { VMSH_OP_SAVE = 1, VMSH_OP_LOAD = 2 };

/* Rules for field_exists / needed (reference/src/vmsd.rs Test). */
enum {
    VMSH_RULE_NONE = 0xff,
    VMSH_RULE_CONST = 0,
    VMSH_RULE_NONZERO = 1,
    VMSH_RULE_ZERO = 2,
    VMSH_RULE_VERSION_AT_LEAST = 3,
};

typedef struct VmshRule {
    uint8_t kind;
    uint8_t arg;    /* width (NONZERO/ZERO) or value (CONST) */
    uint64_t offset;
    int32_t n;      /* VERSION_AT_LEAST */
} VmshRule;

typedef struct VmshField {
    char *name;
    uint64_t offset, size;
    int32_t num;
    uint32_t num_ind_offset;
    uint8_t num_ind_size;
    uint32_t size_ind_offset;
    uint8_t size_ind_size;
    char *info;          /* "" = NULL info */
    int32_t vmsd;        /* -1 = NULL */
    int32_t version_id, struct_version_id;
    uint32_t flags;      /* raw VMStateFlags bits, never reinterpreted */
    VmshRule exists;
} VmshField;

typedef struct VmshVmsd {
    char *name;
    int32_t version_id, minimum_version_id;
    uint32_t terminator_flags;
    VmshRule needed;
    uint32_t n_subs;
    int32_t *subs;
    uint32_t n_fields;
    VmshField *fields;
} VmshVmsd;

typedef struct VmshDesc {
    uint32_t n_vmsds;
    VmshVmsd *vmsds;
    uint32_t root;
} VmshDesc;

/* Allocators of the ledger; the numbers are on the wire. */
enum {
    VMSH_G_MALLOC = 0,
    VMSH_G_MALLOC0 = 1,
    VMSH_G_TRY_MALLOC = 2,
    VMSH_G_TRY_MALLOC0 = 3,
    VMSH_G_MALLOC_N = 4,
    VMSH_G_MALLOC0_N = 5,
    VMSH_G_REALLOC = 6,
    VMSH_G_FREE = 7,
};

/* Allocations above this abort (g_malloc*) or fail (g_try_malloc*). */
#define VMSH_ALLOC_CAP (1ull << 30)

/* ---- provided by the core (proto.c) ---- */

/* Serves requests on stdin/stdout until EOF. */
int vmsh_serve(void);

/* Rule evaluation, used through the generated callback families. */
/* rules.c: the callback family. */
#define VMSH_SLOTS 1024
/* How many rules a description needs (each takes one slot). */
int vmsh_rules_in(const VmshDesc *d);
/* Frees every slot, before a request's tables are built. */
void vmsh_rules_reset(void);
bool (*vmsh_exists_fn(const VmshRule *r))(void *opaque, int version_id);
bool (*vmsh_needed_fn(const VmshRule *r, int version_id))(void *opaque);

/*
 * Ledger hooks for the allocator interposition of the ABI layer. `real` is
 * the result of the real allocator. vmsh_before_alloc says whether a request
 * of `size` bytes is over the cap (the caller then aborts or returns NULL).
 */
bool vmsh_over_cap(uint64_t size);
void vmsh_note_alloc(int allocator, uint64_t size, void *p);
void vmsh_note_free(void *p);
/* Called by the ABI layer around error_free(): drops the Error's own
 * allocations from the ledger. */
void vmsh_ledger_drop_begin(void);
void vmsh_ledger_drop_end(void);
/* The ABI layer turns the ledger on around the vmstate call only. */
void vmsh_tracking(bool on);

/* ---- provided by the ABI layer (abi.h) ---- */
#include "abi.h"

#endif
