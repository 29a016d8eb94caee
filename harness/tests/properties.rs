//! The differential property campaign (README, "Testing strategy"). Each property runs
//! `PROPTEST_CASES` cases (256 by default); failures print the shrunk case
//! as a case file and an annotated hex diff.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use vmstate_harness::generate::{GenCase, RoundTrip};
use vmstate_harness::oracle::{self, Mutation};
use vmstate_reference::Dialect;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

/// Raw bytes through `arbitrary`: one generator for proptest and the fuzzer.
fn arb<T: for<'a> Arbitrary<'a> + std::fmt::Debug>(max_len: usize) -> impl Strategy<Value = T> {
    proptest::collection::vec(any::<u8>(), 0..max_len)
        .prop_filter_map("arbitrary rejected the bytes", |bytes| {
            T::arbitrary_take_rest(Unstructured::new(&bytes)).ok()
        })
}

/// qemu-master devices every dialect can describe.
fn portable() -> impl Strategy<Value = GenCase> {
    proptest::collection::vec(any::<u8>(), 0..4096)
        .prop_filter_map("arbitrary rejected the bytes", |bytes| {
            vmstate_harness::generate::generate_portable(&mut Unstructured::new(&bytes)).ok()
        })
}

fn check(r: Result<(), oracle::Failure>) -> Result<(), TestCaseError> {
    r.map_err(|f| TestCaseError::fail(f.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/properties.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn reference_and_optimized_save_agree(case in arb::<GenCase>(4096)) {
        check(oracle::save_agrees(&case))?;
    }

    #[test]
    fn reference_and_optimized_load_agree(case in arb::<GenCase>(4096), m in any::<(u16, u8, u8)>()) {
        let mutation = match m.2 % 5 {
            0 => Mutation::None,
            1 => Mutation::Truncate(m.0),
            2 => Mutation::Replace(m.0, m.1),
            3 => Mutation::Marker(m.0, m.1 & 1 != 0, m.1 & 2 != 0),
            _ => Mutation::HostileCount(m.0),
        };
        check(oracle::load_agrees(&case, &mutation))?;
    }

    #[test]
    fn load_of_save_gives_back_the_state(case in arb::<RoundTrip>(4096)) {
        check(oracle::round_trip(&case.0))?;
    }

    #[test]
    fn qemu_11_1_and_alloc_combo_bytes_agree(case in portable()) {
        if let Some(r) = oracle::dynamic_wire_agrees(&case) {
            check(r)?;
        }
    }

    #[test]
    fn qemu_10_bytes_are_qemu_11_1_bytes_without_0x31(case in portable()) {
        if let Some(r) = oracle::markers_differ_exactly(&case) {
            check(r)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/properties.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn both_vmstate_checks_agree_on_raw_flag_sets(raw in arb::<vmstate_harness::generate::RawVmsd>(512)) {
        for d in Dialect::ALL {
            oracle::check_agrees(d, &raw.0).map_err(TestCaseError::fail)?;
        }
    }
}
