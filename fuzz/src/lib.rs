//! What every fuzz target links: the global allocator. Outside sanitizer
//! builds it is mimalloc (the oracles allocate on every input; `check`
//! runs about a fifth more cases per second with it, see the README). Under ASan the
//! sanitizer's own allocator must see every allocation, so `build.rs` marks
//! such builds `cfg(sanitized)` and the system allocator stays.

#[cfg(not(sanitized))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
