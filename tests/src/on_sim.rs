//! What the driver-on-simulator tests (`tests/tests/*_on_sim.rs`) share: bring a simulated port
//! up, and check that the model saw no protocol violation.

use std::time::Duration;

use ixgbe_core::{Config, Device, Mempool, Started};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform};

/// A simulator with one port configured as `config`: the simulator, the port and its platform.
pub fn sim_nic_with(config: NicConfig) -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(config);
    let platform = sim.platform(nic);
    (sim, nic, platform)
}

/// [`sim_nic_with`] a default port whose MAC address is `mac`.
pub fn sim_nic(mac: [u8; 6]) -> (Sim, NicId, SimPlatform) {
    sim_nic_with(NicConfig {
        mac,
        ..NicConfig::default()
    })
}

/// Inits the device and waits up to 10 s (virtual) for link; panics on either failing.
pub fn start<'a>(
    platform: &SimPlatform,
    config: &Config,
    pools: &'a [Mempool<SimPlatform>],
) -> Started<'a, SimPlatform> {
    start_within(platform, config, pools, Duration::from_secs(10))
}

/// [`start`] with a bound of its own on the link wait.
pub fn start_within<'a>(
    platform: &SimPlatform,
    config: &Config,
    pools: &'a [Mempool<SimPlatform>],
    link: Duration,
) -> Started<'a, SimPlatform> {
    let started = Device::init(platform.clone(), config, pools).expect("init");
    started.device.wait_for_link(link).expect("link");
    started
}

/// Panics, listing them, if the simulator recorded any protocol violation.
pub fn assert_clean(sim: &Sim) {
    let v = sim.violations();
    assert!(
        v.is_empty(),
        "simulator recorded protocol violations: {v:#?}"
    );
}
