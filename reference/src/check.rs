//! `vmstate_check` (migration/savevm.c): the description checks QEMU runs
//! under qtest when a device registers. Every failure is an assertion in C.

use crate::dialect::{CheckRules, Dialect, Flag};
use crate::error::{CheckRule, Error, ErrorKind};
use crate::path::Path;
use crate::vmsd::Vmsd;

/// `vmstate_check`, recursively over STRUCT/VSTRUCT children and subsections.
pub fn check(d: Dialect, vmsd: &Vmsd) -> Result<(), Error> {
    check_vmsd(d, vmsd, &vmsd.name)
}

fn fail(rule: CheckRule, path: &str) -> Error {
    Error::new(ErrorKind::Check(rule), 0, path)
}

fn check_vmsd(d: Dialect, vmsd: &Vmsd, path: &str) -> Result<(), Error> {
    for field in &vmsd.fields {
        let fpath = format!("{path}.{}", field.name);
        let f = field.flags;
        match d.facts().check {
            CheckRules::None => {}
            CheckRules::AutoAlloc => check_field_auto_alloc(d, field, &fpath, false)?,
            CheckRules::AutoAllocAndIndirect => check_field_auto_alloc(d, field, &fpath, true)?,
            CheckRules::AllocCombo => check_field_alloc_combo(d, field, &fpath)?,
        }
        if d.has(f, Flag::Struct) || d.has(f, Flag::Vstruct) {
            // vmstate_check(field->vmsd): a NULL vmsd would crash here
            let child = field
                .vmsd
                .as_deref()
                .ok_or_else(|| fail(CheckRule::StructWithoutVmsd, &fpath))?;
            check_vmsd(d, child, &fpath)?;
        }
    }
    if vmsd.terminator != d.end() {
        return Err(fail(CheckRule::NotEndingWithVmsEnd, path));
    }
    for sub in &vmsd.subsections {
        // strncmp(vmsd->name, (*subsection)->name, strlen(vmsd->name))
        if !sub.name.starts_with(vmsd.name.as_str()) {
            return Err(fail(
                CheckRule::SubsectionPrefix,
                &format!("{path}/{}", sub.name),
            ));
        }
        check_vmsd(
            d,
            sub,
            &Path::Root(path)
                .subsection(&vmsd.name, &sub.name)
                .to_string(),
        )?;
    }
    Ok(())
}

/// The per-field rules of Peter Xu's series (as in 11.1.3) and, with
/// `indirect`, the count/size rules of the Aug-2026 "Check more vmstate
/// flags" (master).
fn check_field_auto_alloc(
    d: Dialect,
    field: &crate::vmsd::Field,
    path: &str,
    indirect: bool,
) -> Result<(), Error> {
    let f = field.flags;
    if d.has(f, Flag::ArrayOfPointer) {
        if d.has(f, Flag::ArrayOfPointerAutoAlloc) {
            // "Size must be provided because dest QEMU needs that info to know what to allocate"
            if field.size == 0 && field.size_indirect.size == 0 {
                return Err(fail(CheckRule::AutoAllocNeedsSize, path));
            }
        } else if field.size != 0 || field.size_indirect.size != 0 {
            return Err(fail(CheckRule::ArrayOfPointerHasSize, path));
        }
        if !(d.has(f, Flag::Array) || d.has_varray(f)) {
            return Err(fail(CheckRule::ArrayOfPointerNeedsArray, path));
        }
    }
    if d.has(f, Flag::ArrayOfPointerAutoAlloc) && !d.has(f, Flag::ArrayOfPointer) {
        return Err(fail(CheckRule::AutoAllocNeedsArrayOfPointer, path));
    }
    if !indirect {
        return Ok(());
    }
    if d.has(f, Flag::Varray) && field.num_indirect.size == 0 {
        return Err(fail(CheckRule::VarrayNeedsNumIndirect, path));
    }
    if d.has(f, Flag::Vbuffer) && field.size_indirect.size == 0 {
        return Err(fail(CheckRule::VbufferNeedsSizeIndirect, path));
    }
    Ok(())
}

/// The rules as Fabiano Rosas' RFC 13/17 rewrites them: `ARRAY_OF_POINTER |
/// ALLOC` takes AUTO_ALLOC's place, and only the plain array of pointers
/// still needs an ARRAY/VARRAY flag.
fn check_field_alloc_combo(
    d: Dialect,
    field: &crate::vmsd::Field,
    path: &str,
) -> Result<(), Error> {
    let f = field.flags;
    if !d.has(f, Flag::ArrayOfPointer) {
        return Ok(());
    }
    if d.has(f, Flag::Alloc) {
        if field.size == 0 && field.size_indirect.offset == 0 {
            return Err(fail(CheckRule::AutoAllocNeedsSize, path));
        }
        return Ok(());
    }
    if field.size != 0 || field.size_indirect.offset != 0 {
        return Err(fail(CheckRule::ArrayOfPointerHasSize, path));
    }
    let arrays = [
        Flag::Array,
        Flag::VarrayInt32,
        Flag::VarrayUint16,
        Flag::VarrayUint8,
        Flag::VarrayUint32,
    ];
    if !arrays.into_iter().any(|a| d.has(f, a)) {
        return Err(fail(CheckRule::ArrayOfPointerNeedsArray, path));
    }
    Ok(())
}
