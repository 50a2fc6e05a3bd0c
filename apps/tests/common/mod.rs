//! Running the built programs and reading their output.
#![allow(dead_code)] // each test file uses a different part

use std::process::{Command, Output};

use serde_json::Value;

/// Runs `bin` with `args`, failing the test on a spawn error.
pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// Runs a program that must succeed with `--json` and returns the JSON object on the last line
/// of its stdout.
pub fn run_json(bin: &str, args: &[&str]) -> Value {
    let out = run(bin, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{bin} {args:?} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    // The programs log every protocol violation the simulator recorded as a warning.
    assert!(!stderr.contains("simulator:"), "stderr: {stderr}");
    let last = stdout.lines().last().expect("no output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// Runs a program that must succeed with `--json`: every line of its stdout parsed as JSON (the
/// test fails on any line that is not), and its stderr.
pub fn run_json_lines(bin: &str, args: &[&str]) -> (Vec<Value>, String) {
    let out = run(bin, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{bin} {args:?}: {stderr}");
    assert!(!stderr.contains("simulator:"), "{stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (lines, stderr)
}

/// A u64 field of a JSON object.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Sum of a device field over all devices.
pub fn sum(v: &Value, key: &str) -> u64 {
    v["devices"]
        .as_array()
        .expect("devices array")
        .iter()
        .map(|d| u(d, key))
        .sum()
}
