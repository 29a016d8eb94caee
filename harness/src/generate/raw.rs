//! Descriptions with raw flag bits, for `vmstate_check` verdicts.

use arbitrary::{Arbitrary, Result, Unstructured};

/// A description with raw flag bits, for checking `vmstate_check` verdicts:
/// every bit any dialect defines, plus stray ones, sizes and indirections
/// set or not, nested VMSDs, subsections named well or badly, and the
/// terminators of every dialect.
#[derive(Debug, Clone)]
pub struct RawVmsd(pub vmstate_reference::Vmsd);

impl<'a> Arbitrary<'a> for RawVmsd {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        raw_vmsd(u, "raw", 0).map(RawVmsd)
    }
}

fn raw_vmsd(u: &mut Unstructured, name: &str, depth: usize) -> Result<vmstate_reference::Vmsd> {
    use vmstate_reference::{Field, Indirect};
    const BITS: [u32; 18] = [
        0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000,
        0x4000, 0x8000, 0x10000, 0x20000,
    ];
    let mut fields = vec![];
    for k in 0..u.int_in_range(0..=4)? {
        let mut flags = 0;
        for _ in 0..u.int_in_range(0..=5)? {
            flags |= *u.choose(&BITS)?;
        }
        let mut f = Field::new(format!("f{k}"), 0, flags);
        f.size = *u.choose(&[0, 0, 1, 4, 8])?;
        f.num = u.int_in_range(0..=3)?;
        let indirect = |u: &mut Unstructured| -> Result<Indirect> {
            Ok(if u.arbitrary()? {
                Indirect {
                    offset: *u.choose(&[0, 8])?,
                    size: *u.choose(&[1, 2, 4, 8])?,
                }
            } else {
                Indirect::NONE
            })
        };
        f.num_indirect = indirect(u)?;
        f.size_indirect = indirect(u)?;
        if depth < 3 && u.ratio(1, 3)? {
            f.vmsd = Some(Box::new(raw_vmsd(u, &format!("{name}.{k}"), depth + 1)?));
        }
        fields.push(f);
    }
    let mut subsections = vec![];
    if depth < 2 && u.ratio(1, 4)? {
        let sub_name = if u.arbitrary()? {
            format!("{name}/sub")
        } else {
            "elsewhere/sub".into()
        };
        subsections.push(raw_vmsd(u, &sub_name, depth + 1)?);
    }
    Ok(vmstate_reference::Vmsd {
        name: name.into(),
        version_id: 1,
        minimum_version_id: 0,
        fields,
        terminator: *u.choose(&[0x10000, 0x20000, 0x10000, 0x20000, 0x30000])?,
        subsections,
        needed: None,
    })
}
