//! The named ways QEMU's own load leaks or trips over its allocations.

use super::Cause;
use std::fmt;
use vmstate_reference::{Dialect, Dynamic, Flag, is_dynamic_array};

/// A way QEMU's load leaks or trips over its own allocations, with the C
/// code responsible. Line numbers are given only where a diff in the
/// sources showed them (the RFC 13/17 hunks of seed 001); otherwise the
/// statement is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// `VMS_POINTER|VMS_ALLOC` overwrites a non-NULL pointer without freeing
    /// it (all dialects; spec 3.2).
    VmsAllocOverwrite,
    /// alloc-combo `vmstate_next`: `if (!next || field->flags & VMS_ALLOC)`
    /// allocates a new element over a non-NULL slot (spec 3.4, seed 001).
    ComboAllocOverNonNull,
    /// A load that fails midway frees nothing: auto-allocated elements and
    /// `VMS_ALLOC` buffers stay attached to the device (spec 3.5).
    FailedLoadKeepsAllocations,
    /// qemu-11.1 `VMS_ALLOC` with AUTO_ALLOC: the pointer table comes from
    /// `g_try_malloc` (not zeroed), and the NULL-slot assertion sees poison
    /// (spec 3.6; `ErrorKind::AutoAllocSlotNotNull`).
    AllocAutoAllocUnzeroedTable,
}

impl Finding {
    pub const ALL: [Finding; 4] = [
        Finding::VmsAllocOverwrite,
        Finding::ComboAllocOverNonNull,
        Finding::FailedLoadKeepsAllocations,
        Finding::AllocAutoAllocUnzeroedTable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Finding::VmsAllocOverwrite => "VmsAllocOverwrite",
            Finding::ComboAllocOverNonNull => "ComboAllocOverNonNull",
            Finding::FailedLoadKeepsAllocations => "FailedLoadKeepsAllocations",
            Finding::AllocAutoAllocUnzeroedTable => "AllocAutoAllocUnzeroedTable",
        }
    }

    pub fn from_name(s: &str) -> Option<Finding> {
        Finding::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The QEMU file, function and statement (or line) responsible.
    pub fn qemu_site(self) -> &'static str {
        match self {
            Finding::VmsAllocOverwrite => {
                "migration/vmstate.c vmstate_handle_alloc: `*base = g_malloc(size * n)` \
                 (qemu-10.x; qemu-11.1 after c3b99f30: `*base = g_try_malloc(bytes)`; \
                 alloc-combo: reached from vmstate_first, RFC 13/17 line 118 \
                 `if (alloc && field->flags & VMS_ALLOC)`): the old pointer is not freed"
            }
            Finding::ComboAllocOverNonNull => {
                "migration/vmstate.c vmstate_next (RFC 13/17, line 145): \
                 `if (!next || field->flags & VMS_ALLOC)` then \
                 `*array_elem = g_malloc0(field->size)`: the old element is not freed"
            }
            Finding::FailedLoadKeepsAllocations => {
                "migration/vmstate.c vmstate_load_vmsd: on a field error \
                 `qemu_file_set_error(f, ret); return false;` with no g_free of what \
                 vmstate_handle_alloc / vmstate_load_next allocated"
            }
            Finding::AllocAutoAllocUnzeroedTable => {
                "migration/vmstate.c vmstate_handle_alloc: `g_malloc` (11.1.3) or \
                 `g_try_malloc` (master), not g_malloc0, \
                 for the pointer table, then vmstate_load_next: \
                 `assert(!auto_alloc || *pptr == NULL)` reads the uninitialised slot"
            }
        }
    }

    /// The dialects whose code has this finding, read from their facts.
    pub fn dialects(self) -> Vec<Dialect> {
        match self {
            Finding::VmsAllocOverwrite | Finding::FailedLoadKeepsAllocations => {
                Dialect::ALL.to_vec()
            }
            Finding::ComboAllocOverNonNull => with_dynamic(Dynamic::ArrayOfPointerAlloc),
            Finding::AllocAutoAllocUnzeroedTable => with_dynamic(Dynamic::AutoAllocFlag),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.qemu_site())
    }
}

fn with_dynamic(dynamic: Dynamic) -> Vec<Dialect> {
    Dialect::ALL
        .into_iter()
        .filter(|d| d.facts().dynamic == dynamic)
        .collect()
}

/// Which finding's code overwrites a slot of a field with these flags.
pub(super) fn cause_of(d: Dialect, flags: u32) -> Cause {
    if d.facts().dynamic == Dynamic::ArrayOfPointerAlloc && is_dynamic_array(d, flags) {
        Cause::Finding(Finding::ComboAllocOverNonNull)
    } else if d.has(flags, Flag::Pointer) && d.has(flags, Flag::Alloc) {
        Cause::Finding(Finding::VmsAllocOverwrite)
    } else {
        Cause::Overwrite
    }
}
