//! The core logs through the `log` facade: init steps at debug, counted anomalies at warn (rate
//! limited), timeouts at error. A capturing logger (this test binary's only one) checks each.

use std::sync::Mutex;
use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Device, Mempool, Packet, DEFAULT_BUF_SIZE};
use platform_mock::{Fault, NicConfig, RxCorruption, Sim};

static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target().starts_with("ixgbe_core") {
            let line = (record.level(), record.args().to_string());
            LINES.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

fn lines_at(level: log::Level) -> Vec<String> {
    let lines = LINES.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.0 == level)
        .map(|l| l.1.clone())
        .collect()
}

#[test]
fn init_steps_anomalies_and_timeouts_are_logged() {
    log::set_logger(&Capture).expect("the only logger");
    log::set_max_level(log::LevelFilter::Trace);

    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::default());
    let platform = sim.platform(nic);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let config = Config::default().rx_ring_size(64).tx_ring_size(64);
    let mut started = Device::init(platform, &config, &pools).expect("init");
    started
        .device
        .wait_for_link(Duration::from_secs(1))
        .expect("link");
    let debug = lines_at(log::Level::Debug);
    for step in [
        "init: 8086:10fb",
        "reset done",
        "link: AUTOC",
        "receive on",
        "tx queue",
    ] {
        assert!(debug.iter().any(|l| l.contains(step)), "{step}: {debug:#?}");
    }

    // 100 corrupted write-backs: counted, and logged a handful of times, not 100.
    sim.set_fault(
        nic,
        Fault::RxWriteback {
            corruption: RxCorruption::LengthTooLong,
            count: 100,
        },
    );
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    for _ in 0..100 {
        sim.inject(nic, &[0xFF; 60]);
        started.rx[0].rx_batch(&mut batch, 32);
        batch.clear();
    }
    assert_eq!(started.rx[0].counters().bad_length, 100);
    let warns = lines_at(log::Level::Warn);
    assert_eq!(warns.len(), 7, "1, 2, 4 ... 64: {warns:#?}");
    assert!(warns[0].contains("bad length"));

    sim.set_link(nic, false);
    assert!(started
        .device
        .wait_for_link(Duration::from_millis(50))
        .is_err());
    let errors = lines_at(log::Level::Error);
    assert!(
        errors.iter().any(|l| l.contains("timed out")),
        "{errors:#?}"
    );
}
