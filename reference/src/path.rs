//! Field paths (`dev.arr[3].a`, `dev/sub.x`): where a walk of a
//! description is, kept as a chain of borrowed steps on the walk's stack and
//! rendered as text only when an error, a span or an allocation's origin
//! names it.

use std::fmt;

/// One step of a field path, pointing at the path it extends.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The root VMSD's name.
    Root(&'a str),
    /// `.name`: a field.
    Field(&'a Path<'a>, &'a str),
    /// `[i]`: an element of an array.
    Element(&'a Path<'a>, i64),
    /// A subsection whose name extends its parent's (`dev/sub` under `dev`):
    /// the rest (`/sub`), appended as is.
    Suffix(&'a Path<'a>, &'a str),
    /// Any other subsection: `/` and its whole name.
    Subsection(&'a Path<'a>, &'a str),
}

impl<'a> Path<'a> {
    /// The path of element `i` of the field at `self`: `[i]` for an array,
    /// else the field's own path.
    pub fn element(&'a self, array: bool, i: i64) -> Path<'a> {
        if array { Path::Element(self, i) } else { *self }
    }

    /// The path of subsection `sub` of the VMSD `parent` at `self`: `p.s` +
    /// `s/extra` gives `p.s/extra`; a name that does not extend the
    /// parent's is appended whole, after a `/`.
    pub fn subsection(&'a self, parent: &str, sub: &'a str) -> Path<'a> {
        match sub.strip_prefix(parent) {
            Some(rest) if rest.starts_with('/') => Path::Suffix(self, rest),
            _ => Path::Subsection(self, sub),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Element(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Suffix(parent, rest) => write!(f, "{parent}{rest}"),
            Path::Subsection(parent, name) => write!(f, "{parent}/{name}"),
        }
    }
}

/// An error's or a ledger entry's path: the text.
impl From<&Path<'_>> for String {
    fn from(path: &Path<'_>) -> String {
        path.to_string()
    }
}

impl From<Path<'_>> for String {
    fn from(path: Path<'_>) -> String {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_as_qemu_developers_write_them() {
        let root = Path::Root("dev");
        let arr = Path::Field(&root, "arr");
        let third = arr.element(true, 3);
        assert_eq!(Path::Field(&third, "a").to_string(), "dev.arr[3].a");
        assert_eq!(arr.element(false, 3).to_string(), "dev.arr");
        let elem = Path::Field(&root, "s");
        assert_eq!(elem.subsection("s", "s/extra").to_string(), "dev.s/extra");
        assert_eq!(root.subsection("dev", "devx/y").to_string(), "dev/devx/y");
        assert_eq!(root.subsection("dev", "other").to_string(), "dev/other");
    }
}
