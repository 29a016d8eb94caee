//! Sets `cfg(sanitized)` when RUSTFLAGS ask for a sanitizer (`cargo fuzz
//! build -s address`, OSS-Fuzz's builds): see src/lib.rs.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(sanitized)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags
        .split('\x1f')
        .any(|f| f.contains("sanitizer=") && !f.ends_with("sanitizer=none"))
    {
        println!("cargo::rustc-cfg=sanitized");
    }
}
