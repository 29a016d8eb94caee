//! The compatibility matrix (`vmstate-harness matrix`) on a few generated
//! devices per field kind: what it must say, worked out from the wire
//! formats, not from a run of it.

use vmstate_harness::generate::PreState;
use vmstate_harness::matrix::compute;
use vmstate_reference::Dialect;

#[test]
fn plain_fields_load_in_their_own_dialect_and_qemu_10_cannot_read_ptr_markers() {
    let rows = compute(12, 0x3a7, PreState::Fresh);
    // Fields that allocate nothing load, into a fresh destination, what
    // their own dialect saved. (Allocating kinds may leak even there: a
    // qemu-10.x VMS_ALLOC emulating a dynamic array, see the README.)
    let plain = ["scalar", "VMS_ARRAY", "buffer", "VMS_STRUCT / VSTRUCT"];
    for (kind, src, cells) in rows.iter().filter(|(k, _, _)| plain.contains(k)) {
        let own = &cells[src];
        assert!(
            own.cases > 0 && own.ok == own.cases,
            "{kind}: {src} -> {src}: {own:?}"
        );
    }
    // qemu-11.1 puts a 0x31 before each non-NULL element of a dynamic
    // array; qemu-10.x reads no markers there, so such a stream fails.
    let (_, _, cells) = rows
        .iter()
        .find(|(kind, src, _)| *kind == "dynamic array of pointers" && *src == Dialect::Qemu11_1)
        .expect("a qemu-11.1 row for the dynamic array");
    let into_10 = &cells[&Dialect::Qemu10];
    assert!(
        into_10.ok < into_10.cases,
        "qemu-11.1 -> qemu-10.x: {into_10:?}"
    );
}
