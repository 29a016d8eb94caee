//! The optimized codec gives back every byte it allocates: a counting
//! global allocator (this test binary only) sees the live byte count return
//! to where it was after building a destination, loading into it (QEMU-
//! faithful and strict, on success and on every error path: each
//! truncation, marker flips, hostile counts) and dropping everything.
//!
//! One `#[test]` only, so no other test thread allocates meanwhile; the
//! counter is per thread anyway.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use vmstate_harness::codec::Compiled;
use vmstate_harness::fuzz;
use vmstate_harness::generate::GenCase;
use vmstate_harness::oracle::{Mutation, stream_of};

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(delta: i64) {
    // try_with: the thread-local may already be gone during thread teardown.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are the caller's; the bookkeeping
// only touches a const-initialised thread-local `Cell`, which never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl's comment).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn case(seed: u64) -> Option<GenCase> {
    use arbitrary::{Arbitrary, Unstructured};
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..rng.random_range(64..4096))
        .map(|_| rng.random())
        .collect();
    GenCase::arbitrary_take_rest(Unstructured::new(&data)).ok()
}

#[test]
fn the_codec_returns_every_byte_on_success_and_on_every_error_path() {
    let (mut ok, mut err) = (0, 0);
    for seed in 0..60 {
        let Some(case) = case(seed) else { continue };
        let Some(b) = fuzz::build(&case) else {
            continue;
        };
        let Ok((saved, _)) = b.reference_save() else {
            continue;
        };
        let stream = stream_of(&saved);
        let mut streams: Vec<Vec<u8>> = (0..stream.len().min(64))
            .map(|cut| stream[..cut].to_vec())
            .collect();
        streams.push(stream.clone());
        for at in [1u16, 7, 13, 29] {
            for m in [
                Mutation::Marker(at, true, false),
                Mutation::Marker(at, true, true),
                Mutation::HostileCount(at),
                Mutation::Replace(at, 0xff),
            ] {
                streams.push(m.apply(&stream));
            }
        }
        for s in &streams {
            for strict in [false, true] {
                let baseline = live();
                {
                    let codec = Compiled::new(b.d, &b.dest.vmsd);
                    let mut heap = b.dest.heap.clone();
                    let r = if strict {
                        codec.load_strict(&mut heap, b.dest.opaque, b.dest.vmsd.version_id, s)
                    } else {
                        codec.load(&mut heap, b.dest.opaque, b.dest.vmsd.version_id, s)
                    };
                    match r {
                        Ok(_) => ok += 1,
                        Err(_) => err += 1,
                    }
                }
                let after = live();
                assert_eq!(
                    after,
                    baseline,
                    "{} bytes not returned (strict: {strict}) on stream {}\n{}",
                    after - baseline,
                    hex::encode(s),
                    case.to_json()
                );
            }
        }
    }
    assert!(
        ok > 20 && err > 200,
        "{ok} successful and {err} failed loads"
    );
}
