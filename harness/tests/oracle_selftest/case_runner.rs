//! The case runner: one wrong expectation per row must be reported.

use serde_json::{Value, json};
use vmstate_harness::case::{self, spec::CaseFile};
use vmstate_harness::engine::{Engine, Optimized, Reference};

// ---------------------------------------------------------------------------
// Case runner

/// Every expectation field of the case format, with a correct value.
fn runner_file() -> Value {
    json!({
      "source": "oracle self-test",
      "structs": {"S": "uint16_t a; uint8_t b[2];", "V": "uint32_t a; uint32_t b;", "PS": "S *one;", "T": "uint8_t x; uint8_t y;"},
      "vmsds": [
        {"name": "s", "struct": "S", "fields": [
          {"member": "a", "info": "uint16"}, {"member": "b", "info": "uint8", "num": 2, "flags": "ARRAY"}]},
        {"name": "must", "struct": "V", "fields": [
          {"member": "a", "info": "uint32"},
          {"member": "b", "info": "uint32", "flags": "MUST_EXIST", "exists": false}]},
        {"name": "none", "struct": "V", "fields": [
          {"member": "a", "info": "uint32", "exists": false}]},
        {"name": "aop-noarray", "struct": "PS", "fields": [
          {"member": "one", "vmsd": "s", "size": 0, "flags": "STRUCT|ARRAY_OF_POINTER"}]},
        {"name": "t", "struct": "T", "fields": [{"member": "x", "info": "uint8"}],
         "subsections": ["t/y"]},
        {"name": "t/y", "struct": "T", "needed": {"nonzero": "y"},
         "fields": [{"member": "y", "info": "uint8"}]}
      ],
      "cases": [
        {"name": "round trip", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"],
         "root": "s", "check": "ok", "state": {"a": 258, "b": [3, 4]}, "wire": "0102 0304"},
        {"name": "errors", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"],
         "root": "must", "state": {"a": 1, "b": 2}, "wire": "00000001 00000002",
         "save": {"error": "MustExistOnSave", "path": "must.b"},
         "load": {"error": "InputValidationFailed", "offset": 4, "path": "must.b"}},
        {"name": "nothing on the wire", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"],
         "root": "none", "state": {"a": 5}, "wire": "", "dest": {"a": 9},
         "load": {"state": {"a": 9}}},
        {"name": "bad description", "dialects": ["qemu-master", "qemu-11.1"],
         "root": "aop-noarray", "check": "ArrayOfPointerNeedsArray"},
        {"name": "second half loads", "dialects": ["qemu-10.x", "qemu-master", "qemu-11.1", "alloc-combo"],
         "root": "t", "state": {"x": 1, "y": 2},
         "wire": "01 | 05 03 742f79 00000001 | 02", "truncations": false}
      ]
    })
}

/// Runs the file on `engine`: (case name, failure) per case and dialect.
fn run_runner(file: &Value, engine: &dyn Engine) -> Vec<(String, Option<String>)> {
    let file: CaseFile = serde_json::from_value(file.clone()).expect("a case file");
    case::run_case_file("selftest", &file, engine)
        .into_iter()
        .map(|r| {
            assert!(r.skipped.is_none(), "{r}");
            (r.name, r.failure)
        })
        .collect()
}

/// One wrong expectation: which case, what to change, and a word the
/// failure must contain.
struct Row {
    what: &'static str,
    case: usize,
    edit: fn(&mut Value),
    says: &'static str,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "wire",
            case: 0,
            edit: |c| c["wire"] = json!("0102 0305"),
            says: "save gave",
        },
        Row {
            what: "save error code",
            case: 1,
            edit: |c| c["save"]["error"] = json!("NullPointerBase"),
            says: "save: error",
        },
        Row {
            what: "save error path",
            case: 1,
            edit: |c| c["save"]["path"] = json!("must.a"),
            says: "save: error",
        },
        Row {
            what: "save succeeds where an error is expected",
            case: 0,
            edit: |c| c["save"] = json!({"error": "MustExistOnSave"}),
            says: "expected error MustExistOnSave",
        },
        Row {
            what: "load error code",
            case: 1,
            edit: |c| c["load"]["error"] = json!("NotEqual"),
            says: "expected NotEqual",
        },
        Row {
            what: "load error offset",
            case: 1,
            edit: |c| c["load"]["offset"] = json!(0),
            says: "expected offset 0",
        },
        Row {
            what: "load error path",
            case: 1,
            edit: |c| c["load"]["path"] = json!("must.a"),
            says: "expected must.a",
        },
        Row {
            what: "load error expected, load succeeds",
            case: 0,
            edit: |c| c["load"] = json!({"error": "Eof"}),
            says: "load succeeded",
        },
        Row {
            what: "load success expected, load fails",
            case: 1,
            edit: |c| c["load"] = json!(true),
            says: "load failed",
        },
        Row {
            what: "loaded state",
            case: 0,
            edit: |c| c["load"] = json!({"state": {"a": 258, "b": [3, 5]}}),
            says: "loaded state",
        },
        Row {
            what: "loaded state (kept destination member)",
            case: 2,
            edit: |c| c["load"]["state"]["a"] = json!(5),
            says: "loaded state",
        },
        Row {
            what: "consumed length (a byte the load does not read)",
            case: 0,
            edit: |c| {
                c["wire"] = json!("0102 0304 ff");
                c["save"] = json!(false);
            },
            says: "consumed 4 bytes of 5",
        },
        Row {
            what: "truncations",
            case: 4,
            edit: |c| c["truncations"] = json!(true),
            says: "second half",
        },
        Row {
            what: "truncations (default)",
            case: 4,
            edit: |c| {
                c.as_object_mut().unwrap().remove("truncations");
            },
            says: "second half",
        },
        Row {
            what: "check verdict: ok expected",
            case: 3,
            edit: |c| c["check"] = json!("ok"),
            says: "vmstate_check gave ArrayOfPointerNeedsArray",
        },
        Row {
            what: "check verdict: a rule expected",
            case: 0,
            edit: |c| c["check"] = json!("ArrayOfPointerNeedsArray"),
            says: "vmstate_check gave ok",
        },
    ]
}

#[test]
fn case_runner_passes_the_unmutated_file() {
    for engine in [&Reference as &dyn Engine, &Optimized] {
        let results = run_runner(&runner_file(), engine);
        assert_eq!(results.len(), 18);
        for (name, failure) in &results {
            assert!(failure.is_none(), "{} {name}: {failure:?}", engine.name());
        }
    }
}

/// Each wrong expectation fails its case in every dialect, with the
/// failure the row names, and leaves every other case passing.
#[test]
fn case_runner_reports_every_wrong_expectation() {
    let mut missed = Vec::new();
    for row in rows() {
        let mut file = runner_file();
        (row.edit)(&mut file["cases"][row.case]);
        let case_name = file["cases"][row.case]["name"]
            .as_str()
            .unwrap()
            .to_string();
        for engine in [&Reference as &dyn Engine, &Optimized] {
            for (name, failure) in run_runner(&file, engine) {
                let mutated = name.contains(&format!(":{case_name}@"));
                match (mutated, &failure) {
                    (true, Some(f)) if f.contains(row.says) => {}
                    (false, None) => {}
                    _ => missed.push(format!(
                        "{} [{}] {name}: {failure:?} (want {:?})",
                        row.what,
                        engine.name(),
                        row.says
                    )),
                }
            }
        }
    }
    assert!(missed.is_empty(), "\n{}", missed.join("\n"));
}
