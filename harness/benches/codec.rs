//! Reference model vs optimized codec, save and load, on three workloads,
//! with a plain memcpy of the same byte count as the physical baseline.
//! `cargo bench -p vmstate-harness --bench codec`; README shows the ratios.

use divan::{Bencher, black_box};
use vmstate_harness::codec::Compiled;
use vmstate_reference::{
    self as reference, Addr, Dialect, Field, Heap, HeapLimits, Indirect, Info, Test, Vmsd,
};

fn main() {
    divan::main();
}

// qemu-master: the workloads use its one VMS_VARRAY with a count width.
const D: Dialect = Dialect::QemuMaster;

fn flags(text: &str) -> u32 {
    D.parse_flags(text).expect("valid flags")
}

fn vmsd(name: &str, fields: Vec<Field>, subsections: Vec<Vmsd>) -> Vmsd {
    Vmsd {
        name: name.into(),
        version_id: 1,
        minimum_version_id: 1,
        fields,
        terminator: D.end(),
        subsections,
        needed: None,
    }
}

fn scalar(name: &str, offset: u64, info: Info) -> Field {
    let mut f = Field::new(name, offset, 0);
    f.info = Some(info);
    f.size = info.scalar_width().unwrap_or(0);
    f
}

/// A workload: description, source heap and object, destination to load into.
struct Workload {
    vmsd: Vmsd,
    src: Heap,
    src_obj: Addr,
    dest: Heap,
    dest_obj: Addr,
}

impl Workload {
    fn stream(&self) -> Vec<u8> {
        let mut s = reference::save_state(D, &self.vmsd, &self.src, self.src_obj).expect("save");
        s.push(0);
        s
    }
}

fn big_heap() -> Heap {
    Heap::new(HeapLimits {
        max_live_bytes: 1 << 30,
    })
}

/// `uint32_t a[262144]`: 1 MiB of dense uint32, VMS_ARRAY.
fn dense() -> Workload {
    const N: usize = 262_144;
    let mut f = scalar("a", 0, Info::Uint32);
    f.flags = flags("ARRAY");
    f.num = N as i32;
    let vmsd = vmsd("dense", vec![f], vec![]);
    let mut src = big_heap();
    let bytes: Vec<u8> = (0..N as u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let src_obj = src.alloc_prepared(bytes).expect("alloc");
    let mut dest = big_heap();
    let dest_obj = dest.alloc_prepared(vec![0; 4 * N]).expect("alloc");
    Workload {
        vmsd,
        src,
        src_obj,
        dest,
        dest_obj,
    }
}

/// `uint32_t n; S **arr` with 65,536 entries, 10% non-NULL, AUTO_ALLOC;
/// `S { uint32_t a; uint16_t b; uint64_t c; }`.
fn sparse_pointers() -> Workload {
    const N: u64 = 65_536;
    let s = vmsd(
        "s",
        vec![
            scalar("a", 0, Info::Uint32),
            scalar("b", 4, Info::Uint16),
            scalar("c", 8, Info::Uint64),
        ],
        vec![],
    );
    let mut arr = Field::new(
        "arr",
        8,
        flags("POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|ARRAY_OF_POINTER_AUTO_ALLOC"),
    );
    arr.size = 16;
    arr.num_indirect = Indirect { offset: 0, size: 4 };
    arr.vmsd = Some(Box::new(s));
    let vmsd = vmsd("sparse", vec![scalar("n", 0, Info::Uint32), arr], vec![]);
    let mut src = big_heap();
    let mut table = Vec::with_capacity(8 * N as usize);
    for i in 0..N {
        let p = if i % 10 == 0 {
            let mut obj = vec![0u8; 16];
            obj[..4].copy_from_slice(&(i as u32).to_le_bytes());
            obj[8..].copy_from_slice(&(i * 3).to_le_bytes());
            src.alloc_prepared(obj).expect("alloc")
        } else {
            0
        };
        table.extend_from_slice(&p.to_le_bytes());
    }
    let t = src.alloc_prepared(table).expect("alloc");
    let mut obj = (N as u32).to_le_bytes().to_vec();
    obj.extend_from_slice(&[0; 4]);
    obj.extend_from_slice(&t.to_le_bytes());
    let src_obj = src.alloc_prepared(obj).expect("alloc");
    let mut dest = big_heap();
    let t = dest.alloc_prepared(vec![0; 8 * N as usize]).expect("alloc");
    let mut obj = vec![0u8; 8];
    obj.extend_from_slice(&t.to_le_bytes());
    let dest_obj = dest.alloc_prepared(obj).expect("alloc");
    Workload {
        vmsd,
        src,
        src_obj,
        dest,
        dest_obj,
    }
}

/// A device: 8 scalars, 32 nested structs (each with 6 fields, an array
/// and a needed subsection), and a subsection of its own.
fn nested_device() -> Workload {
    let inner_sub = vmsd("inner/extra", vec![scalar("x", 24, Info::Uint32)], vec![]);
    let mut arr = scalar("arr", 28, Info::Uint16);
    arr.flags = flags("ARRAY");
    arr.num = 8;
    let mut inner = vmsd(
        "inner",
        vec![
            scalar("a", 0, Info::Uint64),
            scalar("b", 8, Info::Uint32),
            scalar("c", 12, Info::Int32),
            scalar("d", 16, Info::Uint16),
            scalar("e", 18, Info::Bool),
            scalar("f", 20, Info::Uint32),
            arr,
        ],
        vec![inner_sub],
    );
    inner.subsections[0].needed = Some(Test::NonZero {
        offset: 18,
        width: 1,
    });
    const INNER: u64 = 48;
    let mut fields: Vec<Field> = (0..8)
        .map(|i| scalar(&format!("r{i}"), 8 * i, Info::Uint64))
        .collect();
    let mut children = Field::new("children", 64, flags("ARRAY|STRUCT"));
    children.num = 32;
    children.size = INNER;
    children.vmsd = Some(Box::new(inner));
    fields.push(children);
    let outer_sub = vmsd(
        "dev/extra",
        vec![scalar("z", 64 + 32 * INNER, Info::Uint64)],
        vec![],
    );
    let vmsd = vmsd("dev", fields, vec![outer_sub]);
    let size = (64 + 32 * INNER + 8) as usize;
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8 | 1).collect();
    let mut src = big_heap();
    let src_obj = src.alloc_prepared(bytes).expect("alloc");
    let mut dest = big_heap();
    let dest_obj = dest.alloc_prepared(vec![0; size]).expect("alloc");
    Workload {
        vmsd,
        src,
        src_obj,
        dest,
        dest_obj,
    }
}

fn workload(name: &str) -> Workload {
    match name {
        "dense_1MiB" => dense(),
        "sparse_pointers_65536" => sparse_pointers(),
        _ => nested_device(),
    }
}

const WORKLOADS: &[&str] = &["dense_1MiB", "sparse_pointers_65536", "nested_device"];

#[divan::bench(args = WORKLOADS)]
fn save_reference(b: Bencher, name: &str) {
    let w = workload(name);
    b.bench(|| reference::save_state(D, &w.vmsd, &w.src, black_box(w.src_obj)).expect("save"));
}

#[divan::bench(args = WORKLOADS)]
fn save_optimized(b: Bencher, name: &str) {
    let w = workload(name);
    let c = Compiled::new(D, &w.vmsd);
    let mut out = Vec::new();
    b.bench_local(|| {
        c.save_into(&w.src, black_box(w.src_obj), &mut out)
            .expect("save")
    });
}

#[divan::bench(args = WORKLOADS)]
fn load_reference(b: Bencher, name: &str) {
    let w = workload(name);
    let stream = w.stream();
    b.with_inputs(|| w.dest.clone()).bench_local_refs(|heap| {
        reference::load_state(D, &w.vmsd, heap, w.dest_obj, 1, &stream).expect("load")
    });
}

#[divan::bench(args = WORKLOADS)]
fn load_optimized(b: Bencher, name: &str) {
    let w = workload(name);
    let stream = w.stream();
    let c = Compiled::new(D, &w.vmsd);
    b.with_inputs(|| w.dest.clone())
        .bench_local_refs(|heap| c.load(heap, w.dest_obj, 1, &stream).expect("load"));
}

/// The physical baseline: copying as many bytes as the save writes.
#[divan::bench(args = WORKLOADS)]
fn memcpy_baseline(b: Bencher, name: &str) {
    let w = workload(name);
    let len = w.stream().len() - 1;
    let src = vec![0x5au8; len];
    let mut dst = vec![0u8; len];
    b.bench_local(|| dst.copy_from_slice(black_box(&src)));
}
