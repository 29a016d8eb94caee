/*
 * vmstate-engine: field_exists and needed as data. A fixed family of
 * VMSH_SLOTS C functions, each evaluating the rule stored in its slot
 * (PROTOCOL.md, "rules"); the ABI layers hand them to QEMU as callbacks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "proto.h"

#include <string.h>

/* ---- rules: a fixed family of callbacks reading their rule from a slot ----- */

static VmshRule slots[VMSH_SLOTS];
static int slot_version[VMSH_SLOTS];
static int n_slots;

void vmsh_rules_reset(void) { n_slots = 0; }

static bool eval(int i, void *opaque, int version_id)
{
    const VmshRule *r = &slots[i];
    uint64_t v = 0;
    size_t w;

    switch (r->kind) {
    case VMSH_RULE_CONST:
        return r->arg != 0;
    case VMSH_RULE_NONZERO:
    case VMSH_RULE_ZERO:
        w = r->arg > 8 ? 8 : r->arg;
        memcpy(&v, (const uint8_t *)opaque + r->offset, w);
        return (r->kind == VMSH_RULE_NONZERO) == (v != 0);
    case VMSH_RULE_VERSION_AT_LEAST:
        return version_id >= r->n;
    }
    return false;
}

#define F1(a, b, c, d, e)                                                      \
    static bool ex_##a##b##c##d##e(void *o, int v)                             \
    {                                                                          \
        return eval(a * 256 + b * 64 + c * 16 + d * 4 + e, o, v);             \
    }                                                                          \
    static bool nd_##a##b##c##d##e(void *o)                                    \
    {                                                                          \
        int i = a * 256 + b * 64 + c * 16 + d * 4 + e;                         \
        return eval(i, o, slot_version[i]);                                    \
    }
#define F4(a, b, c, d) F1(a, b, c, d, 0) F1(a, b, c, d, 1) F1(a, b, c, d, 2) F1(a, b, c, d, 3)
#define F16(a, b, c) F4(a, b, c, 0) F4(a, b, c, 1) F4(a, b, c, 2) F4(a, b, c, 3)
#define F64(a, b) F16(a, b, 0) F16(a, b, 1) F16(a, b, 2) F16(a, b, 3)
#define F256(a) F64(a, 0) F64(a, 1) F64(a, 2) F64(a, 3)
F256(0) F256(1) F256(2) F256(3)

#define L1(p, a, b, c, d, e) p##_##a##b##c##d##e,
#define L4(p, a, b, c, d) L1(p, a, b, c, d, 0) L1(p, a, b, c, d, 1) L1(p, a, b, c, d, 2) L1(p, a, b, c, d, 3)
#define L16(p, a, b, c) L4(p, a, b, c, 0) L4(p, a, b, c, 1) L4(p, a, b, c, 2) L4(p, a, b, c, 3)
#define L64(p, a, b) L16(p, a, b, 0) L16(p, a, b, 1) L16(p, a, b, 2) L16(p, a, b, 3)
#define L256(p, a) L64(p, a, 0) L64(p, a, 1) L64(p, a, 2) L64(p, a, 3)

typedef bool (*ExistsFn)(void *, int);
typedef bool (*NeededFn)(void *);
static const ExistsFn exists_fns[VMSH_SLOTS] = { L256(ex, 0) L256(ex, 1) L256(ex, 2) L256(ex, 3) };
static const NeededFn needed_fns[VMSH_SLOTS] = { L256(nd, 0) L256(nd, 1) L256(nd, 2) L256(nd, 3) };

static int slot_for(const VmshRule *r, int version_id)
{
    if (n_slots >= VMSH_SLOTS) {
        return -1;
    }
    slots[n_slots] = *r;
    slot_version[n_slots] = version_id;
    return n_slots++;
}

bool (*vmsh_exists_fn(const VmshRule *r))(void *opaque, int version_id)
{
    if (r->kind == VMSH_RULE_NONE) {
        return NULL;
    }
    int i = slot_for(r, 0);
    return i < 0 ? NULL : exists_fns[i];
}

bool (*vmsh_needed_fn(const VmshRule *r, int version_id))(void *opaque)
{
    if (r->kind == VMSH_RULE_NONE) {
        return NULL;
    }
    int i = slot_for(r, version_id);
    return i < 0 ? NULL : needed_fns[i];
}

int vmsh_rules_in(const VmshDesc *d)
{
    int n = 0;
    for (uint32_t i = 0; i < d->n_vmsds; i++) {
        n += d->vmsds[i].needed.kind != VMSH_RULE_NONE;
        for (uint32_t j = 0; j < d->vmsds[i].n_fields; j++) {
            n += d->vmsds[i].fields[j].exists.kind != VMSH_RULE_NONE;
        }
    }
    return n;
}
