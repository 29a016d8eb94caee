/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * abi-11.1.3.h - hand-laid declarations of the QEMU 11.1.3 migration ABI, as
 * found in Debian's qemu-system-x86_64 1:11.1.3+ds-1~bpo13+1 (x86_64,
 * sha256 e69417a0c13d9b38221e515c79f890babc5026508767fc0657fd0b83bbfe40c3).
 *
 * Written from the binary (objdump disassembly, .data.rel.ro tables with
 * their R_X86_64_RELATIVE relocations applied by elfscan.py), not copied from
 * QEMU's headers.  Every offset says how it was checked; FACTS-11.1.3.md has
 * the commands and their output.  The struct/member names follow QEMU's so
 * that driver code written against QEMU's headers compiles against this one.
 *
 * Nothing here is linked: the driver resolves every function and data symbol
 * at run time with dlsym(RTLD_DEFAULT, name) (the executable is linked with
 * --export-dynamic).  See QABI_FUNCS below.
 */
#ifndef VMSTATE_HARNESS_ABI_11_1_3_H
#define VMSTATE_HARNESS_ABI_11_1_3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QABI_QEMU_VERSION "11.1.3"
#define QABI_DEB_VERSION "1:11.1.3+ds-1~bpo13+1"
#define QABI_BINARY_SHA256 \
    "e69417a0c13d9b38221e515c79f890babc5026508767fc0657fd0b83bbfe40c3"

/* Opaque QEMU types (only ever handled through pointers). */
typedef struct QEMUFile QEMUFile;
typedef struct QIOChannel QIOChannel;
typedef struct QIOChannelFile QIOChannelFile;   /* parent QIOChannel at +0 */
typedef struct QIOChannelBuffer QIOChannelBuffer;
typedef struct JSONWriter JSONWriter;
typedef struct Error Error;
typedef struct Object Object;

typedef struct VMStateInfo VMStateInfo;
typedef struct VMStateField VMStateField;
typedef struct VMStateDescription VMStateDescription;
typedef struct VMStateStructMember VMStateStructMember;

/*
 * enum VMStateFlags, 11.1.x values.  Checked: NVMe aer_reqs = 0x1044a and
 * sq/cq = 0x1084a with num_indirect.size 1 resp. 4 (elfscan flags 0x10000);
 * vmstate_n_elems tests flags & 4 (ARRAY) then flags & 0xc90 (the four VARRAY
 * bits); vmstate_size tests 0x100 (VBUFFER), 0x200 (MULTIPLY), 0x40
 * (ARRAY_OF_POINTER); the load loop tests 0x8 (STRUCT), 0x8000 (VSTRUCT),
 * 0x10000 (AUTO_ALLOC), 0x1000 (MUST_EXIST), (flags & 0x2002) == 0x2002
 * (POINTER|ALLOC), and asserts field->flags == 0x20000 (END) after the list.
 */
enum VMStateFlags {
    VMS_SINGLE           = 0x001,
    VMS_POINTER          = 0x002,
    VMS_ARRAY            = 0x004,
    VMS_STRUCT           = 0x008,
    VMS_VARRAY_INT32     = 0x010,   /* read unsigned at num_indirect.size */
    VMS_BUFFER           = 0x020,
    VMS_ARRAY_OF_POINTER = 0x040,
    VMS_VARRAY_UINT16    = 0x080,   /* not VMS_NO_STATE (that is 11.2+) */
    VMS_VBUFFER          = 0x100,
    VMS_MULTIPLY         = 0x200,
    VMS_VARRAY_UINT8     = 0x400,
    VMS_VARRAY_UINT32    = 0x800,
    VMS_MUST_EXIST       = 0x1000,
    VMS_ALLOC            = 0x2000,
    /* 0x4000 (MULTIPLY_ELEMENTS) is gone: no code tests it in 11.1.3. */
    VMS_VSTRUCT          = 0x8000,
    VMS_ARRAY_OF_POINTER_AUTO_ALLOC = 0x10000,
    VMS_END              = 0x20000,
};
/* The mask vmstate_n_elems tests (0xc90) after VMS_ARRAY. */
#define QABI_VMS_VARRAY_ANY (VMS_VARRAY_INT32 | VMS_VARRAY_UINT16 | \
                             VMS_VARRAY_UINT8 | VMS_VARRAY_UINT32)

/* Stream markers (load compares qemu_get_byte() with 0x30 and 0x31). */
#define VMS_MARKER_PTR_NULL  0x30u
#define VMS_MARKER_PTR_VALID 0x31u

/*
 * VMStateStructMember {u32 offset; u8 size} (8 bytes with padding).
 * Checked: vmstate_n_elems reads mov edx,[field+0x20]; movzx eax,byte
 * [field+0x24] and switches on 1/2/4/8; vmstate_size does the same at
 * +0x18/+0x1c.  Fifo8.data has size_indirect = {0x8, 4}.
 */
struct VMStateStructMember {
    uint32_t offset;
    uint8_t size;
};

/*
 * VMStateInfo, 0x28 bytes (dynsym size of vmstate_info_uint32 = 0x28).
 * get@0x8: load loop "call [info+0x8]" with (f, pv, size, field), int < 0 = error.
 * put@0x10: save "call [info+0x10]" when save == NULL.
 * load@0x18: load loop tests [info+0x18] first, calls (f, pv, size, field, errp).
 * save@0x20: save tests [info+0x20] first, calls (f, pv, size, field, vmdesc, errp).
 */
struct VMStateInfo {
    const char *name;                                             /* 0x00 */
    int (*get)(QEMUFile *f, void *pv, size_t size,
               const VMStateField *field);                        /* 0x08 */
    int (*put)(QEMUFile *f, void *pv, size_t size,
               const VMStateField *field, JSONWriter *vmdesc);    /* 0x10 */
    bool (*load)(QEMUFile *f, void *pv, size_t size,
                 const VMStateField *field, Error **errp);        /* 0x18 */
    bool (*save)(QEMUFile *f, void *pv, size_t size,
                 const VMStateField *field, JSONWriter *vmdesc,
                 Error **errp);                                   /* 0x20 */
};

/*
 * VMStateField, 0x60 bytes.  Checked on the tables of .data.rel.ro
 * (elfscan scan: records of 0x60, terminator name NULL and flags 0x20000),
 * e.g. Fifo8 {data off 0 size_ind {8,4} flags 0x102 info buffer; head off 0xc
 * size 4 uint32; num off 0x10}, and in the disassembly:
 *   name@0      load loop ends on [field] == 0
 *   offset@8    first_elem = opaque + [field+0x8]
 *   size@0x10   vmstate_size returns [field+0x10]; g_malloc0([field+0x10]) for AUTO_ALLOC
 *   size_indirect@0x18, num_indirect@0x20 (see VMStateStructMember)
 *   start@0x28  (not read by vmstate.c; kept by the tables)
 *   num@0x30    vmstate_n_elems: movsxd rbx,[field+0x30] (int, sign-extended)
 *   info@0x38   [field+0x38] then [info+0x8/0x18]
 *   flags@0x40  test [field+0x40]; MUST_EXIST as test byte [field+0x41],0x10
 *   vmsd@0x48   STRUCT: vmstate_load_vmsd(f, [field+0x48], ...)
 *   version_id@0x50        field_exists fallback: [field+0x50] <= version_id
 *   struct_version_id@0x54 VSTRUCT: version = [field+0x54]
 *   field_exists@0x58      called with (opaque, version_id) when non-NULL
 */
struct VMStateField {
    const char *name;                                   /* 0x00 */
    size_t offset;                                      /* 0x08 */
    size_t size;                                        /* 0x10 */
    VMStateStructMember size_indirect;                  /* 0x18 */
    VMStateStructMember num_indirect;                   /* 0x20 */
    size_t start;                                       /* 0x28 */
    int num;                                            /* 0x30 */
    const VMStateInfo *info;                            /* 0x38 */
    enum VMStateFlags flags;                            /* 0x40 */
    const VMStateDescription *vmsd;                     /* 0x48 */
    int version_id;                                     /* 0x50 */
    int struct_version_id;                              /* 0x54 */
    bool (*field_exists)(void *opaque, int version_id); /* 0x58 */
};

typedef enum {
    MIG_PRI_UNINITIALIZED = 0,
    MIG_PRI_LOW,
    MIG_PRI_DEFAULT,
    /* later values unused by the harness; not verified */
} MigrationPriority;

/*
 * VMStateDescription, 0x70 bytes (dynsym size of vmstate_fifo8,
 * vmstate_pci_device, ... = 0x70).  There is no cpu_sync (master's bool at
 * 0xa): vmstate_load_vmsd goes from post_load straight to the success trace.
 *   name@0                 trace/error args [vmsd]
 *   unmigratable@8, early_setup@9   bytes (Fifo8: 0, 0); layout as master
 *   version_id@0xc         vmstate_save_state passes [vmsd+0xc]; load: cmp [vmsd+0xc], version_id
 *   minimum_version_id@0x10  load: cmp [vmsd+0x10], version_id
 *   priority@0x14          int enum (not used by vmstate.c)
 *   pre_load@0x18          called (opaque), nonzero = error, if pre_load_errp NULL
 *   pre_load_errp@0x20     called first (opaque, errp) -> bool
 *   post_load@0x28         (opaque, version_id) < 0 = error, if post_load_errp NULL
 *   post_load_errp@0x30    (opaque, version_id, errp) -> bool
 *   pre_save@0x38          (opaque) nonzero = error, if pre_save_errp NULL
 *   pre_save_errp@0x40     (opaque, errp) -> bool, tested first
 *   post_save@0x48         (opaque), result ignored
 *   needed@0x50            vmstate_section_needed: jmp [vmsd+0x50] else 1
 *   dev_unplug_pending@0x58 (layout as master; not read by vmstate.c)
 *   fields@0x60            load/save: rbx = [vmsd+0x60]
 *   subsections@0x68       subsection load/save walk [vmsd+0x68] (NULL-terminated)
 */
struct VMStateDescription {
    const char *name;                                           /* 0x00 */
    bool unmigratable;                                          /* 0x08 */
    bool early_setup;                                           /* 0x09 */
    int version_id;                                             /* 0x0c */
    int minimum_version_id;                                     /* 0x10 */
    MigrationPriority priority;                                 /* 0x14 */
    int (*pre_load)(void *opaque);                              /* 0x18 */
    bool (*pre_load_errp)(void *opaque, Error **errp);          /* 0x20 */
    int (*post_load)(void *opaque, int version_id);             /* 0x28 */
    bool (*post_load_errp)(void *opaque, int version_id,
                           Error **errp);                       /* 0x30 */
    int (*pre_save)(void *opaque);                              /* 0x38 */
    bool (*pre_save_errp)(void *opaque, Error **errp);          /* 0x40 */
    int (*post_save)(void *opaque);                             /* 0x48 */
    bool (*needed)(void *opaque);                               /* 0x50 */
    bool (*dev_unplug_pending)(void *opaque);                   /* 0x58 */
    const VMStateField *fields;                                 /* 0x60 */
    const VMStateDescription *const *subsections;               /* 0x68 */
};

_Static_assert(sizeof(VMStateStructMember) == 8, "VMStateStructMember");
_Static_assert(sizeof(VMStateInfo) == 0x28, "VMStateInfo size");
_Static_assert(offsetof(VMStateInfo, load) == 0x18, "VMStateInfo.load");
_Static_assert(offsetof(VMStateInfo, save) == 0x20, "VMStateInfo.save");
_Static_assert(sizeof(VMStateField) == 0x60, "VMStateField size");
_Static_assert(offsetof(VMStateField, size_indirect) == 0x18, "size_indirect");
_Static_assert(offsetof(VMStateField, num_indirect) == 0x20, "num_indirect");
_Static_assert(offsetof(VMStateField, start) == 0x28, "start");
_Static_assert(offsetof(VMStateField, num) == 0x30, "num");
_Static_assert(offsetof(VMStateField, info) == 0x38, "info");
_Static_assert(offsetof(VMStateField, flags) == 0x40, "flags");
_Static_assert(offsetof(VMStateField, vmsd) == 0x48, "vmsd");
_Static_assert(offsetof(VMStateField, version_id) == 0x50, "version_id");
_Static_assert(offsetof(VMStateField, struct_version_id) == 0x54, "svid");
_Static_assert(offsetof(VMStateField, field_exists) == 0x58, "field_exists");
_Static_assert(sizeof(VMStateDescription) == 0x70, "VMSD size");
_Static_assert(offsetof(VMStateDescription, early_setup) == 0x9, "early_setup");
_Static_assert(offsetof(VMStateDescription, version_id) == 0xc, "version_id");
_Static_assert(offsetof(VMStateDescription, minimum_version_id) == 0x10, "minv");
_Static_assert(offsetof(VMStateDescription, priority) == 0x14, "priority");
_Static_assert(offsetof(VMStateDescription, pre_load) == 0x18, "pre_load");
_Static_assert(offsetof(VMStateDescription, post_load_errp) == 0x30, "ple");
_Static_assert(offsetof(VMStateDescription, pre_save) == 0x38, "pre_save");
_Static_assert(offsetof(VMStateDescription, post_save) == 0x48, "post_save");
_Static_assert(offsetof(VMStateDescription, needed) == 0x50, "needed");
_Static_assert(offsetof(VMStateDescription, fields) == 0x60, "fields");
_Static_assert(offsetof(VMStateDescription, subsections) == 0x68, "subs");

/*
 * module_call_init() phases (enum module_init_type), from the call order in
 * the binary: qemu_init calls 2 after the qemu_add_opts block (OPTS), then 3
 * followed by target_info_qom_set_target() (TARGET_INFO);
 * qemu_init_subsystems calls 5 right after os_set_line_buffering (TRACE),
 * then after bql_lock 4 (QOM) and 0 (MIGRATION).  6 is XEN_BACKEND.
 */
enum {
    QABI_MODULE_INIT_MIGRATION   = 0,
    QABI_MODULE_INIT_BLOCK       = 1,
    QABI_MODULE_INIT_OPTS        = 2,
    QABI_MODULE_INIT_TARGET_INFO = 3,
    QABI_MODULE_INIT_QOM         = 4,
    QABI_MODULE_INIT_TRACE       = 5,
};

/*
 * Exported functions (dynsym, "Base" version) and their 11.1.3 signatures.
 *  vmstate_save_state: mov r9,r8; mov r8d,[vmsd+0xc]; call vmstate_save_vmsd_v;
 *      returns 0 on true, -EINVAL (0xffffffea) on false.
 *  vmstate_load_state: call vmstate_load_vmsd (bool); 0 / -EINVAL likewise.
 *  vmstate_load_vmsd / vmstate_save_vmsd: the bool-returning forms (exported).
 *  qemu_fflush: returns f->last_error (int).
 *  qio_channel_file_new_fd(int fd): object_new(TYPE_QIO_CHANNEL_FILE), fd at
 *      +0x60; the channel owns fd (closed on finalize).
 * X(name, return type, parameter list)
 */
#define QABI_FUNCS(X)                                                         \
    X(vmstate_save_state, int, (QEMUFile *f, const VMStateDescription *vmsd, \
                                void *opaque, JSONWriter *vmdesc,             \
                                Error **errp))                                \
    X(vmstate_load_state, int, (QEMUFile *f, const VMStateDescription *vmsd, \
                                void *opaque, int version_id, Error **errp))  \
    X(qemu_file_new_output, QEMUFile *, (QIOChannel *ioc))                    \
    X(qemu_file_new_input, QEMUFile *, (QIOChannel *ioc))                     \
    X(qio_channel_file_new_fd, QIOChannelFile *, (int fd))                    \
    X(qemu_fflush, int, (QEMUFile *f))                                        \
    X(qemu_fclose, int, (QEMUFile *f))                                        \
    X(qemu_file_get_error, int, (QEMUFile *f))                                \
    X(qemu_file_transferred, uint64_t, (QEMUFile *f))                         \
    X(qemu_get_byte, int, (QEMUFile *f))                                      \
    X(object_unref, void, (void *obj))                                        \
    X(module_call_init, void, (int type))                                     \
    X(target_info_qom_set_target, void, (void))                               \
    X(error_get_pretty, const char *, (const Error *err))                     \
    X(error_free, void, (Error *err))                                         \
    X(json_writer_new, JSONWriter *, (bool pretty))                           \
    X(json_writer_get, const char *, (JSONWriter *writer))                    \
    X(json_writer_free, void, (JSONWriter *writer))                           \
    X(json_writer_start_object, void, (JSONWriter *writer, const char *name)) \
    X(json_writer_end_object, void, (JSONWriter *writer))

/* VMStateInfo objects are data symbols: dlsym(RTLD_DEFAULT, "vmstate_info_uint32"). */
#define QABI_INFOS(X)                                                         \
    X(bool) X(int8) X(int16) X(int32) X(int64) X(uint8) X(uint16) X(uint32)  \
    X(uint64) X(int32_le) X(int32_equal) X(uint8_equal) X(uint16_equal)      \
    X(uint32_equal) X(uint64_equal) X(buffer) X(unused_buffer)               \
    X(ptr_marker)

#endif
