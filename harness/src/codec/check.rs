//! `vmstate_check` written as a rule table: each dialect lists the rules it
//! applies to a field, in the order QEMU's asserts run.

use vmstate_reference::{CheckRule, CheckRules, Dialect, Error, ErrorKind, Field, Flag, Vmsd};

/// One per-field rule: the flags that trigger it and the test it must pass.
#[derive(Clone, Copy)]
struct Rule {
    rule: CheckRule,
    applies: fn(Dialect, u32) -> bool,
    holds: fn(Dialect, &Field) -> bool,
}

fn has(d: Dialect, flags: u32, f: Flag) -> bool {
    d.bit(f).is_some_and(|b| flags & b != 0)
}

fn any(d: Dialect, flags: u32, fs: &[Flag]) -> bool {
    fs.iter().any(|&f| has(d, flags, f))
}

const ARRAYS: [Flag; 6] = [
    Flag::Array,
    Flag::Varray,
    Flag::VarrayInt32,
    Flag::VarrayUint16,
    Flag::VarrayUint8,
    Flag::VarrayUint32,
];

/// Peter Xu's series (qemu-11.1 as shipped, and master).
const AUTO_ALLOC: &[Rule] = &[
    Rule {
        rule: CheckRule::AutoAllocNeedsSize,
        applies: |d, f| has(d, f, Flag::ArrayOfPointer) && has(d, f, Flag::ArrayOfPointerAutoAlloc),
        holds: |_, f| f.size != 0 || f.size_indirect.size != 0,
    },
    Rule {
        rule: CheckRule::ArrayOfPointerHasSize,
        applies: |d, f| {
            has(d, f, Flag::ArrayOfPointer) && !has(d, f, Flag::ArrayOfPointerAutoAlloc)
        },
        holds: |_, f| f.size == 0 && f.size_indirect.size == 0,
    },
    Rule {
        rule: CheckRule::ArrayOfPointerNeedsArray,
        applies: |d, f| has(d, f, Flag::ArrayOfPointer),
        holds: |d, f| any(d, f.flags, &ARRAYS),
    },
    Rule {
        rule: CheckRule::AutoAllocNeedsArrayOfPointer,
        applies: |d, f| has(d, f, Flag::ArrayOfPointerAutoAlloc),
        holds: |d, f| has(d, f.flags, Flag::ArrayOfPointer),
    },
];

/// Master adds "Check more vmstate flags".
const AUTO_ALLOC_AND_INDIRECT: &[Rule] = &[
    AUTO_ALLOC[0],
    AUTO_ALLOC[1],
    AUTO_ALLOC[2],
    AUTO_ALLOC[3],
    Rule {
        rule: CheckRule::VarrayNeedsNumIndirect,
        applies: |d, f| has(d, f, Flag::Varray),
        holds: |_, f| f.num_indirect.size != 0,
    },
    Rule {
        rule: CheckRule::VbufferNeedsSizeIndirect,
        applies: |d, f| has(d, f, Flag::Vbuffer),
        holds: |_, f| f.size_indirect.size != 0,
    },
];

/// Fabiano Rosas' RFC 13/17 (alloc-combo).
const ALLOC_COMBO: &[Rule] = &[
    Rule {
        rule: CheckRule::AutoAllocNeedsSize,
        applies: |d, f| has(d, f, Flag::ArrayOfPointer) && has(d, f, Flag::Alloc),
        holds: |_, f| f.size != 0 || f.size_indirect.offset != 0,
    },
    Rule {
        rule: CheckRule::ArrayOfPointerHasSize,
        applies: |d, f| has(d, f, Flag::ArrayOfPointer) && !has(d, f, Flag::Alloc),
        holds: |_, f| f.size == 0 && f.size_indirect.offset == 0,
    },
    Rule {
        rule: CheckRule::ArrayOfPointerNeedsArray,
        applies: |d, f| has(d, f, Flag::ArrayOfPointer) && !has(d, f, Flag::Alloc),
        holds: |d, f| any(d, f.flags, &ARRAYS),
    },
];

fn rules(d: Dialect) -> &'static [Rule] {
    match d.facts().check {
        CheckRules::None => &[],
        CheckRules::AutoAlloc => AUTO_ALLOC,
        CheckRules::AutoAllocAndIndirect => AUTO_ALLOC_AND_INDIRECT,
        CheckRules::AllocCombo => ALLOC_COMBO,
    }
}

/// `vmstate_check` over `vmsd`, its nested VMSDs and its subsections.
pub fn check(d: Dialect, vmsd: &Vmsd) -> Result<(), Error> {
    walk(d, vmsd, &vmsd.name)
}

fn fail(rule: CheckRule, path: String) -> Error {
    Error::new(ErrorKind::Check(rule), 0, path)
}

fn walk(d: Dialect, vmsd: &Vmsd, path: &str) -> Result<(), Error> {
    for field in &vmsd.fields {
        let fpath = format!("{path}.{}", field.name);
        if let Some(r) = rules(d)
            .iter()
            .find(|r| (r.applies)(d, field.flags) && !(r.holds)(d, field))
        {
            return Err(fail(r.rule, fpath));
        }
        if any(d, field.flags, &[Flag::Struct, Flag::Vstruct]) {
            match &field.vmsd {
                Some(child) => walk(d, child, &fpath)?,
                None => return Err(fail(CheckRule::StructWithoutVmsd, fpath)),
            }
        }
    }
    if vmsd.terminator != d.end() {
        return Err(fail(CheckRule::NotEndingWithVmsEnd, path.to_string()));
    }
    for sub in &vmsd.subsections {
        let Some(rest) = sub.name.strip_prefix(vmsd.name.as_str()) else {
            return Err(fail(
                CheckRule::SubsectionPrefix,
                format!("{path}/{}", sub.name),
            ));
        };
        let spath = if rest.starts_with('/') {
            format!("{path}{rest}")
        } else {
            format!("{path}/{}", sub.name)
        };
        walk(d, sub, &spath)?;
    }
    Ok(())
}
