//! C-like struct declarations and their layout (x86_64 SysV rules), so
//! that case files name members and the harness computes offsets.
//!
//! Grammar, one member per `;`:
//! `[struct] TYPE ['*'...] NAME ['[' N ']'...]`, where TYPE is `bool`,
//! `int8_t` .. `uint64_t`, `int`, `unsigned`, or a struct declared in the
//! same file.

use std::collections::BTreeMap;

/// A C type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CType {
    Bool,
    Int { width: u64, signed: bool },
    Pointer(Box<CType>),
    Array(Box<CType>, u64),
    Struct(String),
}

/// One member of a laid-out struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: CType,
    pub offset: u64,
}

/// A struct after layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    pub name: String,
    pub members: Vec<Member>,
    pub size: u64,
    pub align: u64,
}

impl StructLayout {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// All structs of a case file, laid out.
#[derive(Debug, Clone, Default)]
pub struct Types {
    structs: BTreeMap<String, StructLayout>,
}

const MAX_NESTING: usize = 32;

impl Types {
    /// Parses and lays out every declaration; structs may use each other in
    /// any order, but not recursively except through pointers.
    pub fn new(decls: &BTreeMap<String, String>) -> Result<Types, String> {
        let mut parsed = BTreeMap::new();
        for (name, text) in decls {
            parsed.insert(
                name.clone(),
                parse_members(text, decls).map_err(|e| format!("struct {name}: {e}"))?,
            );
        }
        let mut types = Types::default();
        for name in decls.keys() {
            types.layout(name, &parsed, 0)?;
        }
        Ok(types)
    }

    pub fn get(&self, name: &str) -> Result<&StructLayout, String> {
        self.structs
            .get(name)
            .ok_or_else(|| format!("unknown struct {name}"))
    }

    fn layout(
        &mut self,
        name: &str,
        parsed: &BTreeMap<String, Vec<(String, CType)>>,
        depth: usize,
    ) -> Result<(), String> {
        if self.structs.contains_key(name) {
            return Ok(());
        }
        if depth > MAX_NESTING {
            return Err(format!("struct {name} contains itself"));
        }
        let decl = parsed
            .get(name)
            .ok_or_else(|| format!("unknown struct {name}"))?;
        let mut members = Vec::new();
        let (mut offset, mut align) = (0u64, 1u64);
        for (mname, ty) in decl {
            for s in ty.inline_structs() {
                self.layout(s, parsed, depth + 1)?;
            }
            let (size, a) = (self.size_of(ty)?, self.align_of(ty)?);
            offset = offset.next_multiple_of(a);
            members.push(Member {
                name: mname.clone(),
                ty: ty.clone(),
                offset,
            });
            offset = offset.checked_add(size).ok_or("struct too large")?;
            align = align.max(a);
        }
        let size = offset.next_multiple_of(align);
        self.structs.insert(
            name.to_string(),
            StructLayout {
                name: name.to_string(),
                members,
                size,
                align,
            },
        );
        Ok(())
    }

    /// `sizeof(ty)`
    pub fn size_of(&self, ty: &CType) -> Result<u64, String> {
        Ok(match ty {
            CType::Bool => 1,
            CType::Int { width, .. } => *width,
            CType::Pointer(_) => 8,
            CType::Array(elem, n) => self
                .size_of(elem)?
                .checked_mul(*n)
                .ok_or("array too large")?,
            CType::Struct(s) => self.get(s)?.size,
        })
    }

    /// `_Alignof(ty)`
    pub fn align_of(&self, ty: &CType) -> Result<u64, String> {
        Ok(match ty {
            CType::Bool => 1,
            CType::Int { width, .. } => *width,
            CType::Pointer(_) => 8,
            CType::Array(elem, _) => self.align_of(elem)?,
            CType::Struct(s) => self.get(s)?.align,
        })
    }
}

impl CType {
    /// Struct types laid out inline (not behind a pointer).
    fn inline_structs(&self) -> Vec<&str> {
        match self {
            CType::Struct(s) => vec![s.as_str()],
            CType::Array(elem, _) => elem.inline_structs(),
            _ => vec![],
        }
    }

    /// The element type of an array, or None.
    pub fn array_elem(&self) -> Option<(&CType, u64)> {
        match self {
            CType::Array(elem, n) => Some((elem, *n)),
            _ => None,
        }
    }

    /// The pointee of a pointer, or None.
    pub fn pointee(&self) -> Option<&CType> {
        match self {
            CType::Pointer(t) => Some(t),
            _ => None,
        }
    }
}

fn parse_base(word: &str, decls: &BTreeMap<String, String>) -> Result<CType, String> {
    let int = |width, signed| CType::Int { width, signed };
    Ok(match word {
        "bool" => CType::Bool,
        "int8_t" | "char" => int(1, true),
        "uint8_t" => int(1, false),
        "int16_t" => int(2, true),
        "uint16_t" => int(2, false),
        "int32_t" | "int" => int(4, true),
        "uint32_t" | "unsigned" => int(4, false),
        "int64_t" => int(8, true),
        "uint64_t" | "size_t" => int(8, false),
        s if decls.contains_key(s) => CType::Struct(s.to_string()),
        s => return Err(format!("unknown type {s:?}")),
    })
}

/// Parses `bool b; uint16_t *v; S *arr[4];` into (name, type) pairs.
fn parse_members(
    text: &str,
    decls: &BTreeMap<String, String>,
) -> Result<Vec<(String, CType)>, String> {
    let mut out = Vec::new();
    for decl in text.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let decl = decl.strip_prefix("struct ").unwrap_or(decl).trim_start();
        let split = decl
            .find(|c: char| c.is_whitespace() || c == '*')
            .ok_or_else(|| format!("cannot read member {decl:?}"))?;
        let mut ty = parse_base(&decl[..split], decls)?;
        let mut rest = decl[split..].trim_start();
        while let Some(r) = rest.strip_prefix('*') {
            ty = CType::Pointer(Box::new(ty));
            rest = r.trim_start();
        }
        let name_end = rest.find('[').unwrap_or(rest.len());
        let name = rest[..name_end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad member name in {decl:?}"));
        }
        let mut dims = Vec::new();
        let mut tail = &rest[name_end..];
        while let Some(r) = tail.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("missing ] in {decl:?}"))?;
            dims.push(
                r[..close]
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| format!("{decl:?}: {e}"))?,
            );
            tail = r[close + 1..].trim_start();
        }
        if !tail.is_empty() {
            return Err(format!("trailing {tail:?} in {decl:?}"));
        }
        for n in dims.into_iter().rev() {
            ty = CType::Array(Box::new(ty), n);
        }
        out.push((name.to_string(), ty));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_c_rules() {
        let decls = BTreeMap::from([
            ("S".to_string(), "uint32_t a; uint16_t b;".to_string()),
            (
                "P".to_string(),
                "uint8_t n; S s; S **arr; int32_t *ar[4]; uint8_t m[2][3];".to_string(),
            ),
        ]);
        let t = Types::new(&decls).unwrap();
        let s = t.get("S").unwrap();
        assert_eq!((s.size, s.align), (8, 4));
        let p = t.get("P").unwrap();
        let offs: Vec<u64> = p.members.iter().map(|m| m.offset).collect();
        assert_eq!(offs, [0, 4, 16, 24, 56]);
        assert_eq!(p.size, 64);
        assert_eq!(
            p.member("m").unwrap().ty,
            CType::Array(
                Box::new(CType::Array(
                    Box::new(CType::Int {
                        width: 1,
                        signed: false
                    }),
                    3
                )),
                2
            )
        );
    }

    #[test]
    fn rejects_recursion_and_unknown_types() {
        let decls = BTreeMap::from([("L".to_string(), "L next;".to_string())]);
        assert!(Types::new(&decls).is_err());
        let decls = BTreeMap::from([("L".to_string(), "L *next; float f;".to_string())]);
        assert!(Types::new(&decls).is_err());
        let decls = BTreeMap::from([("L".to_string(), "L *next;".to_string())]);
        assert_eq!(Types::new(&decls).unwrap().get("L").unwrap().size, 8);
    }
}
