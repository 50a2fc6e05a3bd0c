//! `--json`: JSON Lines on stdout, one object per line (every human line then goes to stderr).
//!
//! Each per-second interval gives one `"type": "interval"` object and the run ends with one
//! `"type": "summary"` object, so `tail -1` still gives the summary. Every object carries
//! `"schema"` ([`SCHEMA_VERSION`], raised whenever a field changes meaning or disappears),
//! `"program"`, and per device every counter of [`ixgbe_core::Stats`] plus the rates. Byte
//! counts are on one basis, frames with their 4-byte CRC as on the wire (see
//! [`crate::stats::rx_bytes_with_crc`]); rates in Mbit/s also count preamble and gap (20 B).
//! `"app"` holds the program's own figures ([`app_counter`]: frames generated, captured, ...).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use ixgbe_core::Stats;
use serde_json::{json, Map, Value};

use crate::stats::{mbit_per_s, mpps, rx_bytes_with_crc, PeerTotals};

/// Version of the objects' layout.
pub const SCHEMA_VERSION: u64 = 1;

static JSON_LINES: AtomicBool = AtomicBool::new(false);
static PROGRAM: Mutex<&'static str> = Mutex::new("");
static APP: Mutex<Vec<(&'static str, &'static AtomicU64)>> = Mutex::new(Vec::new());

/// Turns JSON Lines output on for program `program` (its name in every object).
pub fn enable(program: &'static str) {
    JSON_LINES.store(true, Ordering::Relaxed);
    *PROGRAM.lock().unwrap_or_else(|e| e.into_inner()) = program;
}

/// True once [`enable`] was called: stdout carries JSON objects only.
pub fn enabled() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

/// A figure of the program's own (reported under `"app"` in every object), created on first
/// use and shared by every thread: e.g. `app_counter("generated").fetch_add(n, Relaxed)`.
pub fn app_counter(name: &'static str) -> &'static AtomicU64 {
    let mut app = APP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = app.iter().find(|(n, _)| *n == name) {
        return c;
    }
    let c: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    app.push((name, c));
    c
}

fn app_object() -> Value {
    let app = APP.lock().unwrap_or_else(|e| e.into_inner());
    let map: Map<String, Value> = app
        .iter()
        .map(|(n, c)| ((*n).to_string(), json!(c.load(Ordering::Relaxed))))
        .collect();
    Value::Object(map)
}

/// One device's object: every [`Stats`] counter (cumulative) and, over `secs`, the rates of
/// the change since `old`.
pub fn device_object(name: &str, old: &Stats, new: &Stats, secs: f64) -> Value {
    let rxp = new.rx_packets - old.rx_packets;
    let txp = new.tx_packets - old.tx_packets;
    let rxb = rx_bytes_with_crc(new) - rx_bytes_with_crc(old);
    let txb = new.tx_bytes - old.tx_bytes;
    json!({
        "name": name,
        "rx_packets": new.rx_packets,
        "rx_bytes": rx_bytes_with_crc(new),
        "rx_bytes_host": new.rx_bytes,
        "tx_packets": new.tx_packets,
        "tx_bytes": new.tx_bytes,
        "rx_missed": new.rx_missed,
        "rx_dropped": new.rx_dropped,
        "rx_crc_errors": new.rx_crc_errors,
        "rx_mpps": mpps(rxp, secs),
        "rx_mbit_s": mbit_per_s(rxb, rxp, secs),
        "tx_mpps": mpps(txp, secs),
        "tx_mbit_s": mbit_per_s(txb, txp, secs),
    })
}

fn program() -> &'static str {
    *PROGRAM.lock().unwrap_or_else(|e| e.into_inner())
}

/// The object of one interval ending `t` seconds into the run and `secs` seconds long.
pub fn interval_object(t: f64, secs: f64, names: &[String], old: &[Stats], new: &[Stats]) -> Value {
    let devices: Vec<Value> = names
        .iter()
        .zip(old)
        .zip(new)
        .map(|((n, o), s)| device_object(n, o, s, secs))
        .collect();
    json!({
        "schema": SCHEMA_VERSION,
        "type": "interval",
        "program": program(),
        "t": t,
        "interval": secs,
        "devices": devices,
        "app": app_object(),
    })
}

/// The final object: totals and average rates over the whole run of `seconds`.
pub fn summary_object(
    seconds: f64,
    names: &[String],
    stats: &[Stats],
    peer: Option<PeerTotals>,
) -> Value {
    let zero = Stats::default();
    let devices: Vec<Value> = names
        .iter()
        .zip(stats)
        .map(|(n, s)| device_object(n, &zero, s, seconds))
        .collect();
    let mut v = json!({
        "schema": SCHEMA_VERSION,
        "type": "summary",
        "program": program(),
        "seconds": seconds,
        "devices": devices,
        "app": app_object(),
    });
    if let Some(p) = peer {
        v["peer"] = json!({
            "sent": p.sent,
            "received": p.received,
            "corrupted": p.corrupted,
            "lost": p.lost,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_carry_schema_counters_and_rates() {
        let old = Stats::default();
        let new = {
            let mut v = Stats::default(); // #[non_exhaustive]
            v.rx_packets = 1000;
            v.rx_bytes = 60_000;
            v.tx_packets = 1000;
            v.tx_bytes = 64_000;
            v.rx_crc_errors = 2;
            v
        };
        app_counter("test_figure").store(7, Ordering::Relaxed);
        let v = interval_object(2.0, 1.0, &["sim0".into()], &[old], &[new]);
        let v: Value = serde_json::from_str(&v.to_string()).unwrap();
        assert_eq!(v["schema"], SCHEMA_VERSION);
        assert_eq!(v["type"], "interval");
        let d = &v["devices"][0];
        // RX counted with CRC, like GOTC on the TX side: the same bytes give the same rate.
        assert_eq!(d["rx_bytes"], 64_000);
        assert_eq!(d["rx_bytes_host"], 60_000);
        assert_eq!(d["rx_mbit_s"], d["tx_mbit_s"]);
        assert_eq!(d["rx_crc_errors"], 2);
        assert!((d["tx_mpps"].as_f64().unwrap() - 0.001).abs() < 1e-12);
        assert_eq!(v["app"]["test_figure"], 7);
        for key in [
            "rx_missed",
            "rx_dropped",
            "rx_packets",
            "tx_packets",
            "tx_bytes",
        ] {
            assert!(d.get(key).is_some(), "{key} missing");
        }
        let s = summary_object(1.5, &["a".into()], &[new], None);
        assert_eq!(s["type"], "summary");
        assert!(s.get("peer").is_none());
        assert_eq!(s["devices"][0]["rx_mpps"], 1000.0 / 1e6 / 1.5);
    }
}
