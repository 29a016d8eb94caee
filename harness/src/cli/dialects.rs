//! `vmstate-harness dialects`: the dialect table, rendered from the facts
//! the model runs on (reference/src/dialect.rs), so the README cannot drift.

use vmstate_reference::{
    CheckRules, CountRead, Dialect, Dynamic, NullEntry, PointerStride, VbufferSize, VmsAlloc,
};

/// The dialect table as markdown: one row per dialect, one column per fact.
pub fn table() -> String {
    let mut out = String::from(
        "| dialect | flag bits that differ | VARRAY count (`vmstate_n_elems`) | VBUFFER size (`vmstate_size`) | pointer-array stride | `VMS_ALLOC` (`vmstate_handle_alloc`) | NULL entry | dynamic array | `vmstate_check` per-field rules | vmdesc type | source |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for d in Dialect::ALL {
        let f = d.facts();
        let bits: Vec<String> = f
            .bits
            .iter()
            .map(|(flag, b)| format!("{} {b:#x}", flag.qemu_name()))
            .collect();
        let count = match f.count {
            CountRead::CInt => "C `int` of the flag's type",
            CountRead::MemberWidth => "unsigned at `num_indirect.size`, 64-bit",
        };
        let vbuffer = match f.vbuffer_size {
            VbufferSize::Int32Wrapping => "`int32`, `int` multiply wraps",
            VbufferSize::UnsignedWrapping => "unsigned at member width, multiply wraps",
            VbufferSize::UnsignedChecked => "unsigned, multiply overflow is an error",
        };
        let stride = match f.pointer_stride {
            PointerStride::FieldSize => "`field->size`",
            PointerStride::HostPointer => "`sizeof(void *)`",
        };
        let alloc = match f.vms_alloc {
            VmsAlloc::GMalloc => "`g_malloc`, aborts",
            VmsAlloc::GTryMallocChecked => "`g_try_malloc`, overflow-checked, error",
        };
        let null = match f.null_entry {
            NullEntry::Nullptr => "`30` (nullptr, when size != 0)",
            NullEntry::PtrMarker => "`30` (ptr-marker)",
        };
        let dynamic = match f.dynamic {
            Dynamic::None => "none",
            Dynamic::AutoAllocFlag => "AUTO_ALLOC: `31`+element, asserts on a non-NULL slot",
            Dynamic::ArrayOfPointerAlloc => {
                "`ARRAY_OF_POINTER|ALLOC`: `31`+element, allocates over a non-NULL slot"
            }
        };
        let check = match f.check {
            CheckRules::None => "none",
            CheckRules::AutoAlloc => "AUTO_ALLOC size and array rules",
            CheckRules::AutoAllocAndIndirect => "those + num/size_indirect rules",
            CheckRules::AllocCombo => "RFC 13/17 rules",
        };
        out.push_str(&format!(
            "| `{}` | {} | {count} | {vbuffer} | {stride} | {alloc} | {null} | {dynamic} | {check} | `{}` | {} |\n",
            f.name,
            bits.join(", "),
            f.vmdesc_null_type,
            f.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    /// The README shows the table exactly as the facts render it.
    #[test]
    fn readme_shows_the_facts() {
        let readme = include_str!("../../../README.md");
        let table = super::table();
        assert!(
            readme.contains(&table),
            "README's dialect table is stale; paste `vmstate-harness dialects`:\n{table}"
        );
    }
}
