//! The leak oracle's rules, one hand-made heap each.

use serde_json::{Value, json};
use vmstate_harness::case::{ctype::Types, run::prepare, spec::CaseFile};
use vmstate_harness::leak::{self, Cause, Finding, Violation};
use vmstate_reference::{
    Addr, Allocator, Dialect, Error, ErrorKind, Heap, HeapError, UNINIT_BYTE, Vmsd,
};

// ---------------------------------------------------------------------------
// Leak oracle

/// `D { uint32_t len; uint8_t *buf; uint32_t *p; }`: `buf` is a
/// VBUFFER_ALLOC of `len` bytes at offset 8, `p` a plain pointer to one
/// uint32 at offset 16.
const LEAK_FILE: &str = r#"{
  "structs": {"D": "uint32_t len; uint8_t *buf; uint32_t *p;"},
  "vmsds": [{"name": "d", "struct": "D", "fields": [
    {"member": "len", "info": "uint32"},
    {"member": "buf", "info": "buffer", "size_from": "len", "flags": "POINTER|VBUFFER|ALLOC"},
    {"member": "p", "info": "uint32", "num": 1, "flags": "POINTER|ARRAY"}]}],
  "cases": [{"name": "d", "dialects": []}]
}"#;

const BUF: Addr = 8;
const P: Addr = 16;

/// The destination `D` with the given state, on a fresh heap.
fn leak_dest(d: Dialect, state: Value) -> (Vmsd, Heap, Addr) {
    let file: CaseFile = serde_json::from_str(LEAK_FILE).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let dst = prepare(&file, &types, &file.cases[0], d, &state).unwrap();
    (dst.vmsd, dst.heap, dst.opaque)
}

fn empty_dest(d: Dialect) -> (Vmsd, Heap, Addr) {
    leak_dest(d, json!({"len": 0, "buf": null, "p": null}))
}

const OK: Result<usize, Error> = Ok(0);

fn failed() -> Result<usize, Error> {
    Err(Error::new(ErrorKind::Eof, 3, "d"))
}

fn violations(
    d: Dialect,
    vmsd: &Vmsd,
    before: &Heap,
    after: &Heap,
    opaque: Addr,
    r: &Result<usize, Error>,
) -> Vec<Violation> {
    leak::Before::new(d, vmsd, before, opaque)
        .check(after, r)
        .violations
}

/// A load both modes reject: strict mode fails, and the faithful verdict
/// is an unexplained leak, whose text is returned.
fn rejected(walked: &leak::Before, after: &Heap) -> String {
    assert!(walked.strict(after, &OK).is_err());
    walked.faithful(after, &OK).unwrap_err()
}

/// The unbroken heaps: nothing happened, or a load made a buffer and
/// linked it. No rule fires, and strict mode accepts both.
#[test]
fn leak_oracle_passes_a_clean_load() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = empty_dest(d);
        assert!(violations(d, &vmsd, &before, &before, o, &OK).is_empty());
        let mut after = before.clone();
        let b = after.malloc(4, Allocator::GMalloc0, "d.buf").unwrap();
        after.write_ptr(o + BUF, b).unwrap();
        after.write(o, &4u32.to_le_bytes()).unwrap();
        let report = leak::Before::new(d, &vmsd, &before, o).check(&after, &OK);
        assert!(report.is_clean(), "{report}");
        assert_eq!((report.made_live, report.made_bytes), (vec![b], 4));
        leak::Before::new(d, &vmsd, &before, o)
            .strict(&after, &OK)
            .unwrap();
        assert!(
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&after, &OK)
                .unwrap()
                .is_empty()
        );
    }
}

/// Rule 1: an allocation the load made is live and unreachable, whether
/// it is the only, the oldest or the newest one.
#[test]
fn leak_rule_unreachable_allocation() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = empty_dest(d);
        // Only one, made for a path no other allocation has.
        let mut after = before.clone();
        let lost = after.malloc(6, Allocator::GMalloc, "d.buf").unwrap();
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &OK),
            [Violation::Leaked {
                base: lost,
                size: 6,
                made_for: "d.buf".into(),
                allocator: Allocator::GMalloc,
                cause: Cause::Unattributed,
            }]
        );
        let err = rejected(&leak::Before::new(d, &vmsd, &before, o), &after);
        assert!(err.contains(&format!("{lost:#x}")), "{err}");

        // The newest allocation is lost, an older one is linked: the older
        // holds the slot of the same path, so the loss is attributed to
        // VMS_ALLOC overwriting it.
        let mut after = before.clone();
        let kept = after.malloc(4, Allocator::GTryMalloc, "d.buf").unwrap();
        after.write_ptr(o + BUF, kept).unwrap();
        after.write(o, &4u32.to_le_bytes()).unwrap();
        let newest = after.malloc(4, Allocator::GTryMalloc, "d.buf").unwrap();
        let v = violations(d, &vmsd, &before, &after, o, &OK);
        assert_eq!(
            v,
            [Violation::Leaked {
                base: newest,
                size: 4,
                made_for: "d.buf".into(),
                allocator: Allocator::GTryMalloc,
                cause: Cause::Finding(Finding::VmsAllocOverwrite),
            }]
        );
        assert!(
            leak::Before::new(d, &vmsd, &before, o)
                .strict(&after, &OK)
                .is_err()
        );
        assert_eq!(
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&after, &OK)
                .unwrap(),
            [Finding::VmsAllocOverwrite].into()
        );

        // The oldest is lost, the newest linked.
        let mut after = before.clone();
        let oldest = after.malloc(3, Allocator::GMalloc0, "d.buf").unwrap();
        let linked = after.malloc(3, Allocator::GMalloc0, "d.buf").unwrap();
        after.write_ptr(o + BUF, linked).unwrap();
        after.write(o, &3u32.to_le_bytes()).unwrap();
        let v = violations(d, &vmsd, &before, &after, o, &OK);
        assert!(
            matches!(&v[..], [Violation::Leaked { base, size: 3, .. }] if *base == oldest),
            "{v:?}"
        );

        // A load-made allocation for a path whose slot holds a pointer of
        // another origin is unattributed, not blamed on VMS_ALLOC.
        let mut after = before.clone();
        let lost = after.malloc(4, Allocator::GMalloc, "d.p").unwrap();
        let other = after.alloc_prepared(vec![0; 4]).unwrap();
        after.write_ptr(o + P, other).unwrap();
        let v = violations(d, &vmsd, &before, &after, o, &OK);
        assert!(
            matches!(&v[..], [Violation::Leaked { base, cause: Cause::Unattributed, .. }] if *base == lost),
            "{v:?}"
        );
    }
}

/// Rule 2: a caller-prepared allocation reachable before the load is live
/// and unreachable after it.
#[test]
fn leak_rule_prepared_allocation_made_unreachable() {
    for d in Dialect::ALL {
        // Through the plain pointer `p`: no finding explains it.
        let (vmsd, before, o) = leak_dest(d, json!({"len": 0, "buf": null, "p": [7]}));
        let held = before.read_ptr(o + P).unwrap();
        assert!(violations(d, &vmsd, &before, &before, o, &OK).is_empty());
        let mut after = before.clone();
        after.write_ptr(o + P, 0).unwrap();
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &OK),
            [Violation::Overwritten {
                base: held,
                size: 4,
                slot_path: "d.p".into(),
                cause: Cause::Overwrite,
            }]
        );
        let err = rejected(&leak::Before::new(d, &vmsd, &before, o), &after);
        assert!(err.contains("overwritten"), "{err}");

        // Through the VMS_ALLOC pointer `buf`: attributed to the finding.
        let (vmsd, before, o) = leak_dest(d, json!({"len": 2, "buf": "0102", "p": null}));
        let held = before.read_ptr(o + BUF).unwrap();
        let mut after = before.clone();
        let new = after.malloc(2, Allocator::GMalloc, "d.buf").unwrap();
        after.write_ptr(o + BUF, new).unwrap();
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &OK),
            [Violation::Overwritten {
                base: held,
                size: 2,
                slot_path: "d.buf".into(),
                cause: Cause::Finding(Finding::VmsAllocOverwrite),
            }]
        );
        assert_eq!(
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&after, &OK)
                .unwrap(),
            [Finding::VmsAllocOverwrite].into()
        );
        assert!(
            leak::Before::new(d, &vmsd, &before, o)
                .strict(&after, &OK)
                .is_err()
        );

        // A prepared allocation nothing pointed to before is not the load's.
        let mut before2 = before.clone();
        let stray = before2.alloc_prepared(vec![1]).unwrap();
        let after2 = before2.clone();
        assert!(violations(d, &vmsd, &before2, &after2, o, &OK).is_empty());
        assert!(after2.allocation_at(stray).is_some());
        // Nor is the root, which no slot holds.
        let mut after3 = before.clone();
        after3.write_ptr(o + BUF, 0).unwrap();
        let v = violations(d, &vmsd, &before, &after3, o, &OK);
        assert!(
            v.iter()
                .all(|v| !matches!(v, Violation::Overwritten { base, .. } if *base == o)),
            "{v:?}"
        );
    }
}

/// Rule 3: nothing is freed twice, whether the loader returned the error
/// or ignored it (the heap's ledger of bad frees).
#[test]
fn leak_rule_double_free() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = empty_dest(d);
        let mut before = before;
        let x = before.alloc_prepared(vec![0; 4]).unwrap();
        // A free the loader made and ignored.
        let mut after = before.clone();
        after.free(x).unwrap();
        assert!(violations(d, &vmsd, &before, &after, o, &OK).is_empty());
        after.free(x).unwrap_err();
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &OK),
            [Violation::DoubleFree {
                addr: x,
                path: String::new()
            }]
        );
        let err = rejected(&leak::Before::new(d, &vmsd, &before, o), &after);
        assert!(err.contains("double free"), "{err}");
        // The same free returned as the load's result: reported once, with
        // the result's path.
        let r: Result<usize, Error> = Err(Error::new(
            ErrorKind::Memory(HeapError::BadFree { addr: x }),
            5,
            "d.buf",
        ));
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &r),
            [Violation::DoubleFree {
                addr: x,
                path: "d.buf".into()
            }]
        );
        // Returned only (the ledger saw nothing).
        assert_eq!(
            violations(d, &vmsd, &before, &before, o, &r),
            [Violation::DoubleFree {
                addr: x,
                path: "d.buf".into()
            }]
        );
        // Bad frees from before the load are not this load's.
        let mut before2 = after.clone();
        before2.free(0x10).unwrap_err();
        let mut after2 = before2.clone();
        assert!(violations(d, &vmsd, &before2, &after2, o, &OK).is_empty());
        after2.free(0x20).unwrap_err();
        assert_eq!(
            violations(d, &vmsd, &before2, &after2, o, &OK),
            [Violation::DoubleFree {
                addr: 0x20,
                path: String::new()
            }]
        );
    }
}

/// Rule 4: a declared pointer points into freed memory.
#[test]
fn leak_rule_pointer_into_freed_memory() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = leak_dest(d, json!({"len": 0, "buf": null, "p": [7]}));
        let held = before.read_ptr(o + P).unwrap();
        let mut after = before.clone();
        after.free(held).unwrap();
        assert_eq!(
            violations(d, &vmsd, &before, &after, o, &OK),
            [Violation::Dangling {
                path: "d.p".into(),
                addr: held
            }]
        );
        // An interior pointer too.
        let mut after = before.clone();
        after.write_ptr(o + P, held + 2).unwrap();
        after.free(held).unwrap();
        let v = violations(d, &vmsd, &before, &after, o, &OK);
        assert!(
            matches!(&v[..], [Violation::Dangling { addr, .. }] if *addr == held + 2),
            "{v:?}"
        );
        let err = rejected(&leak::Before::new(d, &vmsd, &before, o), &after);
        assert!(err.contains("dangling"), "{err}");
    }
}

/// Rule 5: the peak of a strict load's allocation stays within the cap,
/// even when the load frees it all before returning.
#[test]
fn leak_rule_growth_past_the_strict_cap() {
    let (_, before, _) = empty_dest(Dialect::Qemu11_1);
    let mut after = before.clone();
    after.reset_peak();
    assert_eq!(leak::within_cap(&before, &after, 0), Ok(0));
    let a = after.malloc(100, Allocator::GMalloc0, "d.buf").unwrap();
    let b = after.malloc(20, Allocator::GMalloc0, "d.buf").unwrap();
    after.free(a).unwrap();
    after.free(b).unwrap();
    assert_eq!(after.live_bytes(), before.live_bytes(), "nothing left");
    assert_eq!(leak::within_cap(&before, &after, 120), Ok(120));
    let err = leak::within_cap(&before, &after, 119).unwrap_err();
    assert!(err.contains("120") && err.contains("119"), "{err}");
}

/// The strict contract after a failed load: everything made is freed and
/// every prepared allocation is as it was.
#[test]
fn strict_rules_of_a_failed_load() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = leak_dest(d, json!({"len": 2, "buf": "0102", "p": [7]}));
        // Untouched: fine.
        leak::Before::new(d, &vmsd, &before, o)
            .strict(&before, &failed())
            .unwrap();
        // A made allocation still linked (reachable: no leak rule fires).
        let mut after = before.clone();
        let made = after.malloc(4, Allocator::GMalloc0, "d.p").unwrap();
        let old = after.read_ptr(o + P).unwrap();
        after.write_ptr(o + P, made).unwrap();
        after.free(old).unwrap();
        assert!(
            leak::Before::new(d, &vmsd, &before, o)
                .check(&after, &failed())
                .is_clean()
        );
        let err = leak::Before::new(d, &vmsd, &before, o)
            .strict(&after, &failed())
            .unwrap_err();
        assert!(err.contains("left 4 bytes"), "{err}");
        leak::Before::new(d, &vmsd, &before, o)
            .strict(&after, &OK)
            .unwrap();
        assert_eq!(
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&after, &failed())
                .unwrap(),
            [Finding::FailedLoadKeepsAllocations].into()
        );
        // Prepared bytes not restored: the root, and a buffer.
        for at in [o, before.read_ptr(o + BUF).unwrap()] {
            let mut after = before.clone();
            after.write(at + 1, &[0x55]).unwrap();
            let err = leak::Before::new(d, &vmsd, &before, o)
                .strict(&after, &failed())
                .unwrap_err();
            assert!(err.contains(&format!("{at:#x}")), "{err}");
            leak::Before::new(d, &vmsd, &before, o)
                .strict(&after, &OK)
                .unwrap();
        }
        // A prepared allocation freed (and not pointed to) is not restored.
        let mut before2 = before.clone();
        let stray = before2.alloc_prepared(vec![1]).unwrap();
        let mut after2 = before2.clone();
        after2.free(stray).unwrap();
        let err = leak::Before::new(d, &vmsd, &before2, o)
            .strict(&after2, &failed())
            .unwrap_err();
        assert!(err.contains("did not restore"), "{err}");
    }
}

/// The unzeroed-table finding is named only for its error and slot value,
/// and only in the dialects whose facts have it.
#[test]
fn faithful_names_the_unzeroed_table_only_for_poison() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = empty_dest(d);
        let poison = u64::from_le_bytes([UNINIT_BYTE; 8]);
        let found = |slot: u64| {
            let r = Err(Error::new(ErrorKind::AutoAllocSlotNotNull { slot }, 0, "d"));
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&before, &r)
                .unwrap()
        };
        let has = Finding::AllocAutoAllocUnzeroedTable.dialects().contains(&d);
        assert_eq!(
            found(poison).contains(&Finding::AllocAutoAllocUnzeroedTable),
            has,
            "{d}"
        );
        assert!(found(poison - 1).is_empty());
    }
}

/// The report names every violation on a line of its own, and each
/// finding has a distinct name that reads back and a C site.
#[test]
fn leak_reports_and_findings_render() {
    let d = Dialect::Qemu11_1;
    let (vmsd, before, o) = leak_dest(d, json!({"len": 0, "buf": null, "p": [7]}));
    let held = before.read_ptr(o + P).unwrap();
    let mut after = before.clone();
    let lost = after.malloc(6, Allocator::GMalloc, "d.buf").unwrap();
    after.free(held).unwrap();
    after.free(held).unwrap_err();
    let report = leak::Before::new(d, &vmsd, &before, o).check(&after, &OK);
    let text = report.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    for want in [
        format!("leaked: 6 bytes at {lost:#x} made by g_malloc for d.buf"),
        format!("dangling: d.p points into freed memory at {held:#x}"),
        format!("double free of {held:#x}"),
    ] {
        assert!(text.contains(&want), "{want}\n{text}");
    }
    let mut names = std::collections::BTreeSet::new();
    for f in Finding::ALL {
        assert!(names.insert(f.name()));
        assert_eq!(Finding::from_name(f.name()), Some(f));
        assert!(f.qemu_site().contains("migration/vmstate.c"), "{f:?}");
        assert!(f.to_string().starts_with(f.name()));
        assert!(!f.dialects().is_empty(), "{f:?}");
    }
    assert_eq!(Finding::from_name("nope"), None);
}

/// Paths of slots in subsections: `root/rest` for a subsection named
/// after its parent with a slash, `root/name` otherwise.
#[test]
fn leak_paths_of_subsection_slots() {
    let text = r#"{
      "structs": {"D": "uint32_t *p; uint32_t *q;"},
      "vmsds": [
        {"name": "d", "struct": "D", "fields": [], "subsections": ["d/s", "dd"]},
        {"name": "d/s", "struct": "D", "needed": true,
         "fields": [{"member": "p", "info": "uint32", "num": 1, "flags": "POINTER|ARRAY"}]},
        {"name": "dd", "struct": "D", "needed": true,
         "fields": [{"member": "q", "info": "uint32", "num": 1, "flags": "POINTER|ARRAY"}]}],
      "cases": [{"name": "d", "dialects": []}]
    }"#;
    let file: CaseFile = serde_json::from_str(text).unwrap();
    let types = Types::new(&file.structs).unwrap();
    for d in Dialect::ALL {
        let dst = prepare(
            &file,
            &types,
            &file.cases[0],
            d,
            &json!({"p": [1], "q": [2]}),
        )
        .unwrap();
        let (p, q) = (
            dst.heap.read_ptr(dst.opaque).unwrap(),
            dst.heap.read_ptr(dst.opaque + 8).unwrap(),
        );
        let mut after = dst.heap.clone();
        after.free(p).unwrap();
        after.free(q).unwrap();
        assert_eq!(
            violations(d, &dst.vmsd, &dst.heap, &after, dst.opaque, &OK),
            [
                Violation::Dangling {
                    path: "d/s.p".into(),
                    addr: p
                },
                Violation::Dangling {
                    path: "d/dd.q".into(),
                    addr: q
                }
            ]
        );
    }
}

/// The reachability walk skips scalar arrays whatever their count (so a
/// hostile count cannot use up its element budget), walks arrays of
/// pointers whose `size` is 0 (qemu-11.1's plain `VMSTATE_ARRAY_OF_POINTER`),
/// and stops a hostile count of inline structs after its budget.
#[test]
fn leak_walk_counts_and_budget() {
    let text = r#"{
      "structs": {"S": "uint32_t *p;", "D": "uint32_t n; uint8_t a[1]; S *arr[1]; uint32_t m; S s[1];"},
      "vmsds": [
        {"name": "d", "struct": "D", "fields": [
          {"member": "n", "info": "uint32"},
          {"member": "a", "info": "uint8", "count": "n", "flags": "VARRAY"},
          {"member": "arr", "vmsd": "s", "num": 1, "size": 0, "flags": "ARRAY|ARRAY_OF_POINTER|STRUCT"},
          {"member": "m", "info": "uint32"},
          {"member": "s", "vmsd": "s", "count": "m", "flags": "VARRAY|STRUCT"}]},
        {"name": "s", "struct": "S", "fields": [
          {"member": "p", "info": "uint32", "num": 1, "flags": "POINTER|ARRAY"}]}],
      "cases": [{"name": "d", "dialects": []}]
    }"#;
    let file: CaseFile = serde_json::from_str(text).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let state =
        json!({"n": 0xffff_ffffu32, "a": [0], "arr": [{"p": [1]}], "m": 1, "s": [{"p": [2]}]});
    // qemu-10.x steps through an array of pointers by `size` (here 0, so
    // every element is arr[0]); later dialects by a host pointer.
    for d in Dialect::ALL {
        walk_counts(&file, &types, d, &state);
    }
}

fn walk_counts(file: &CaseFile, types: &Types, d: Dialect, state: &Value) {
    let dst = prepare(file, types, &file.cases[0], d, state).unwrap();
    let elem = dst.heap.read_ptr(dst.opaque + 8).unwrap();
    let p = dst.heap.read_ptr(elem).unwrap();
    let r = leak::reach(d, &dst.vmsd, &dst.heap, dst.opaque);
    assert!(r.reachable.contains(&elem) && r.reachable.contains(&p));
    // The element of arr[0] and what it points to: freeing it dangles.
    let mut after = dst.heap.clone();
    after.free(p).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        violations(d, &dst.vmsd, &dst.heap, &after, dst.opaque, &OK),
        [Violation::Dangling {
            path: "d.arr[0].p".into(),
            addr: p
        }]
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    if d != Dialect::Qemu11_1 {
        return;
    }
    // Two walks of 2^32-1 inline structs, bounded by the budget.
    let mut before = dst.heap.clone();
    before
        .write(dst.opaque + 16, &u32::MAX.to_le_bytes())
        .unwrap();
    let started = std::time::Instant::now();
    assert!(violations(d, &dst.vmsd, &before, &before, dst.opaque, &OK).is_empty());
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

/// A lost object no slot explains is put down to a named finding when
/// there is one, and is unexplained when there is none.
#[test]
fn faithful_cascades_need_a_named_finding() {
    for d in Dialect::ALL {
        let (vmsd, before, o) = leak_dest(d, json!({"len": 2, "buf": "0102", "p": null}));
        let mut after = before.clone();
        let new = after.malloc(2, Allocator::GMalloc, "d.buf").unwrap();
        after.write_ptr(o + BUF, new).unwrap();
        let below = after.malloc(4, Allocator::GMalloc, "d.buf[0].x").unwrap();
        let v = violations(d, &vmsd, &before, &after, o, &OK);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|v| matches!(v, Violation::Leaked { base, cause: Cause::Unattributed, .. } if *base == below)));
        assert_eq!(
            leak::Before::new(d, &vmsd, &before, o)
                .faithful(&after, &OK)
                .unwrap(),
            [Finding::VmsAllocOverwrite].into()
        );
        // Without the overwrite, the same lost object is unexplained.
        let mut alone = before.clone();
        alone.malloc(4, Allocator::GMalloc, "d.buf[0].x").unwrap();
        let err = leak::Before::new(d, &vmsd, &before, o)
            .faithful(&alone, &OK)
            .unwrap_err();
        assert!(err.contains("d.buf[0].x"), "{err}");
    }
}

/// `P { uint8_t n; S **arr; }`, `arr` a dynamic array of `n` pointers to
/// `S { uint32_t a; }` (AUTO_ALLOC in the file's portable words).
const TABLE_FILE: &str = r#"{
  "structs": {"P": "uint8_t n; S **arr;", "S": "uint32_t a;"},
  "vmsds": [
    {"name": "p", "struct": "P", "fields": [
      {"member": "n", "info": "uint8"},
      {"member": "arr", "vmsd": "s", "count": "n", "flags": "POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC"}]},
    {"name": "s", "struct": "S", "fields": [{"member": "a", "info": "uint32"}]}],
  "cases": [{"name": "p", "dialects": []}]
}"#;

/// A destination's count member is stale until the load reads it (here 0,
/// with one element already in the table). The walk must still see that
/// element: alloc-combo allocating over its slot loses it, which the
/// oracle reports; before, the element was invisible and the leak too.
#[test]
fn leak_walk_sees_a_table_behind_a_stale_count() {
    let d = Dialect::AllocCombo;
    let file: CaseFile = serde_json::from_str(TABLE_FILE).unwrap();
    let types = Types::new(&file.structs).unwrap();
    let dst = prepare(
        &file,
        &types,
        &file.cases[0],
        d,
        &json!({"n": 0, "arr": [{"a": 7}]}),
    )
    .unwrap();
    let (vmsd, before, o) = (dst.vmsd, dst.heap, dst.opaque);
    let table = before.read_ptr(o + 8).unwrap();
    let old = before.read_ptr(table).unwrap();
    // What the load does: n = 1, a new element over the slot.
    let mut after = before.clone();
    after.write(o, &[1]).unwrap();
    let new = after.malloc(4, Allocator::GMalloc0, "p.arr[0]").unwrap();
    after.write_ptr(table, new).unwrap();
    let report = leak::Before::new(d, &vmsd, &before, o).check(&after, &OK);
    assert!(
        report
            .violations
            .iter()
            .any(|v| matches!(v, Violation::Overwritten { base, .. } if *base == old)),
        "{report}"
    );
    assert!(
        leak::Before::new(d, &vmsd, &before, o)
            .faithful(&after, &OK)
            .unwrap()
            .contains(&Finding::ComboAllocOverNonNull)
    );
    // qemu-10.x with `.size = 0`: the stride is 0, the walk must not divide by it.
    let mut file10 = file.clone();
    file10.vmsds[0].fields[1].size = Some(0);
    let d10 = Dialect::Qemu10;
    let file10 = vmstate_harness::case::spec::port_to(&file10, d10);
    let dst = prepare(
        &file10,
        &types,
        &file10.cases[0],
        d10,
        &json!({"n": 0, "arr": [{"a": 7}]}),
    )
    .unwrap();
    let clean = leak::Before::new(d10, &dst.vmsd, &dst.heap, dst.opaque).check(&dst.heap, &OK);
    assert!(clean.is_clean(), "{clean}");
}
