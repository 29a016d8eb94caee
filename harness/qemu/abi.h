/*
 * vmstate-engine: what the ABI layer provides to the core (proto.c).
 *
 * The source flavour (driver.c) implements this with QEMU's real headers and
 * links QEMU's static libraries; a binary flavour implements it with
 * hand-laid structs and symbols looked up in a QEMU executable.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMSH_ABI_H
#define VMSH_ABI_H

#include <stddef.h>
#include <stdint.h>

struct VmshDesc;

/* "qemu-10.x", "qemu-11.1" or "qemu-master". */
const char *abi_dialect(void);
/* QEMU_VERSION of the code the engine runs. */
const char *abi_qemu_version(void);
/* Build flags reported in HELLO (bit 0: sanitizers). */
uint32_t abi_build_flags(void);

/*
 * Builds VMStateDescription tables for `d` and returns the root one, or NULL
 * with a message in `err`. The tables stay valid until abi_tables_free().
 */
void *abi_tables_build(const struct VmshDesc *d, char *err, size_t errlen);
void abi_tables_free(void);

/*
 * vmstate_save_state(f, root, opaque, NULL[, errp]) into a QEMUFile writing
 * to `fd` (a memfd the core reads back), then qemu_fflush.
 * *file_error = qemu_file_get_error(f). *message = malloc'd error text or NULL.
 */
int abi_save(void *root, void *opaque, int fd, int *file_error, char **message);

/*
 * vmstate_load_state(f, root, opaque, version_id[, errp]) from a QEMUFile
 * reading `fd` (a memfd holding the stream, at offset 0), then
 * *file_error = qemu_file_get_error(f) and *remaining = bytes still readable
 * with qemu_get_byte (-1 if the file already had an error).
 */
int abi_load(void *root, void *opaque, int version_id, int fd, int *file_error,
             int64_t *remaining, char **message);

#endif
