//! Embeds the case of a host-call or reading floor: with `FLOOR_CASE=case.json` (written by
//! `make bench`: `{"read": bool, "calls": [{"binding", "namespace", "operation", "payload"}],
//! "answer": {...}}`), the policy reads its payload if `read`, makes those calls and gives that
//! answer; without it, it reads nothing, makes no call and accepts.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=FLOOR_CASE");
    let case = match std::env::var_os("FLOOR_CASE") {
        Some(path) => {
            println!("cargo::rerun-if-changed={}", PathBuf::from(&path).display());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("FLOOR_CASE {}: {e}", PathBuf::from(&path).display()));
            serde_json::from_str(&text).expect("FLOOR_CASE holds a case")
        }
        None => serde_json::json!({"read": false, "calls": [], "answer": {"accepted": true}}),
    };
    let text = |value: &serde_json::Value, key: &str| -> String {
        let text = value[key]
            .as_str()
            .unwrap_or_else(|| panic!("a call without {key}"));
        format!("{text:?}")
    };
    let calls: String = case["calls"]
        .as_array()
        .expect("the case's calls")
        .iter()
        .map(|call| {
            format!(
                "Call {{ binding: {}, namespace: {}, operation: {}, payload: {}.as_bytes() }},\n",
                text(call, "binding"),
                text(call, "namespace"),
                text(call, "operation"),
                text(call, "payload"),
            )
        })
        .collect();
    let answer = format!("{:?}", case["answer"].to_string());
    let read = case["read"].as_bool().expect("the case's read");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("case.rs");
    std::fs::write(
        out,
        format!(
            "static READ: bool = {read};\nstatic CALLS: &[Call] = &[\n{calls}];\n\
             static ANSWER: &[u8] = {answer}.as_bytes();\n"
        ),
    )
    .expect("case.rs written");
}
