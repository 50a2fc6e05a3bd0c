//! The driver against board profiles that behave as real X520 and backplane boards do
//! (platform-mock's `board` module): each test is a way a real board stays dark or misbehaves
//! with a driver that shares the simulator's old assumptions, and each failed before the driver
//! handled it (docs/real-boards.md lists them with what a real board would have done).

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Device, Error, Mempool, Packet, Started, DEFAULT_BUF_SIZE};
use platform_mock::{
    Board, Fault, MpsarPowerOn, NicConfig, NicId, Sim, SimPlatform, Violation, ViolationKind,
};

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const LINK_TIMEOUT: Duration = Duration::from_secs(2);

const ESDP: u32 = 0x00020;
const SDP3: u32 = 1 << 3;
const SDP3_DIR: u32 = 1 << 11;
const AUTOC: u32 = 0x042A0;
const LMS_MASK: u32 = 0b111 << 13;
const MPSAR: u32 = 0x0A600;

fn config() -> Config {
    Config::default()
        .rx_ring_size(64)
        .tx_ring_size(64)
        .promiscuous(false)
}

fn nic(sim: &Sim, cfg: NicConfig) -> (NicId, SimPlatform) {
    let id = sim.add_nic(NicConfig { mac: MAC, ..cfg });
    (id, sim.platform(id))
}

fn init<'a>(
    p: &SimPlatform,
    pools: &'a [Mempool<SimPlatform>],
) -> Result<Started<'a, SimPlatform>, Error> {
    Device::init(p.clone(), &config(), pools)
}

fn pool(p: &SimPlatform) -> [Mempool<SimPlatform>; 1] {
    [Mempool::new(p, 256, DEFAULT_BUF_SIZE).expect("pool")]
}

fn read(sim: &Sim, nic: NicId, off: u32) -> u32 {
    use ixgbe_core::Platform;
    sim.platform(nic).read32(off)
}

fn write(p: &SimPlatform, off: u32, v: u32) {
    use ixgbe_core::Platform;
    // SAFETY: a register of the simulated device; no DMA is started by these registers.
    unsafe { p.write32(off, v) }
}

#[test]
fn sr_optics_left_dark_by_linux_get_their_laser_back() {
    // Linux's ixgbe turns the laser off at probe and remove (SDP3 high); ESDP survives every
    // reset, so the next driver finds dark optics. Without turning the laser on: no link.
    let sim = Sim::new();
    let (id, p) = nic(&sim, NicConfig::for_board(Board::X520Sr));
    write(&p, ESDP, SDP3_DIR | SDP3);
    let pools = pool(&p);
    let started = init(&p, &pools).expect("init");
    let link = started
        .device
        .wait_for_link(LINK_TIMEOUT)
        .expect("link with the laser on");
    assert!(link.up);
    assert_eq!(read(&sim, id, ESDP) & (SDP3 | SDP3_DIR), SDP3_DIR);
    assert_eq!(sim.violations(), []);
}

#[test]
fn an_sfp_board_whose_nvm_says_another_link_mode_still_links_at_10g() {
    for lms in [0b000, 0b010, 0b100, 0b110] {
        let mut cfg = NicConfig::for_board(Board::X520Da);
        cfg.nvm.autoc = (cfg.nvm.autoc & !LMS_MASK) | lms << 13;
        let sim = Sim::new();
        let (id, p) = nic(&sim, cfg);
        let pools = pool(&p);
        let started = init(&p, &pools).expect("init");
        let link = started
            .device
            .wait_for_link(LINK_TIMEOUT)
            .unwrap_or_else(|e| panic!("NVM LMS {lms:03b}: {e}"));
        assert_eq!(link.speed.map(|s| s.mbit()), Some(10_000));
        assert_eq!((read(&sim, id, AUTOC) & LMS_MASK) >> 13, 0b011);
        assert_eq!(sim.violations(), []);
    }
}

#[test]
fn a_backplane_board_keeps_the_nvm_link_mode() {
    let sim = Sim::new();
    let (id, p) = nic(&sim, NicConfig::for_board(Board::Backplane));
    let pools = pool(&p);
    let started = init(&p, &pools).expect("init");
    started.device.wait_for_link(LINK_TIMEOUT).expect("link");
    assert_eq!((read(&sim, id, AUTOC) & LMS_MASK) >> 13, 0b100);
    // SDP3 means nothing on a backplane board: left alone.
    assert_eq!(read(&sim, id, ESDP), 0);
    assert_eq!(sim.violations(), []);
}

#[test]
fn an_empty_cage_times_out_waiting_for_link() {
    let sim = Sim::new();
    let (_id, p) = nic(&sim, NicConfig::for_board(Board::X520NoModule));
    let pools = pool(&p);
    let started = init(&p, &pools).expect("init works without a module");
    assert!(matches!(
        started.device.wait_for_link(Duration::from_millis(200)),
        Err(Error::Timeout { .. })
    ));
}

/// A cabled pair of X520 ports: `a` with the given MPSAR power-on content.
fn unicast_through(mpsar: MpsarPowerOn) -> (usize, Vec<Violation>) {
    let sim = Sim::new();
    let (a, pa) = nic(
        &sim,
        NicConfig {
            mpsar,
            ..NicConfig::default()
        },
    );
    let b = sim.add_nic(NicConfig {
        mac: PEER_MAC,
        ..NicConfig::default()
    });
    let pb = sim.platform(b);
    sim.cable(a, b);
    let (pools_a, pools_b) = (pool(&pa), pool(&pb));
    let mut sa = init(&pa, &pools_a).expect("init a");
    let mut sb = init(&pb, &pools_b).expect("init b");
    sa.device.wait_for_link(LINK_TIMEOUT).expect("link a");
    sb.device.wait_for_link(LINK_TIMEOUT).expect("link b");
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    pools_b[0].alloc_batch(&mut batch, 10, 60);
    for p in batch.iter_mut() {
        p[0..6].copy_from_slice(&MAC);
        p[6..12].copy_from_slice(&PEER_MAC);
        p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    }
    sb.tx[0].tx_batch(&mut batch);
    let mut got = 0;
    for _ in 0..100 {
        sim.advance(Duration::from_micros(100));
        let mut rx: HVec<Packet<'_>, 32> = HVec::new();
        sa.rx[0].rx_batch(&mut rx, 32);
        got += rx.len();
    }
    (got, sim.violations())
}

#[test]
fn unicast_works_whatever_mpsar_held_at_power_on() {
    for mpsar in [
        MpsarPowerOn::Zero,
        MpsarPowerOn::Random(1),
        MpsarPowerOn::Random(2),
    ] {
        assert_eq!(unicast_through(mpsar), (10, vec![]), "{mpsar:?}");
    }
}

#[test]
fn mpsar_ends_with_rar0_in_pool_0_and_nothing_else() {
    let sim = Sim::new();
    let (id, p) = nic(&sim, NicConfig::default());
    let pools = pool(&p);
    let _started = init(&p, &pools).expect("init");
    assert_eq!(read(&sim, id, MPSAR), 1);
    for k in 1..256 {
        assert_eq!(read(&sim, id, MPSAR + 4 * k), 0, "MPSAR[{k}]");
    }
}

#[test]
fn a_slow_security_block_does_not_fail_init() {
    for drain in [Duration::from_millis(60), Duration::from_secs(3600)] {
        let sim = Sim::new();
        let (_id, p) = nic(
            &sim,
            NicConfig {
                secrx_drain: drain,
                ..NicConfig::default()
            },
        );
        let pools = pool(&p);
        let started = init(&p, &pools).expect("init goes on after a SECRX_RDY timeout");
        started.device.wait_for_link(LINK_TIMEOUT).expect("link");
    }
    let sim = Sim::new();
    let (id, p) = nic(&sim, NicConfig::default());
    sim.set_fault(id, Fault::SecRxNeverReady);
    let pools = pool(&p);
    assert!(init(&p, &pools).is_ok());
}

#[test]
fn manageability_firmware_gets_the_semaphore_around_autoc() {
    let sim = Sim::new();
    let (_id, p) = nic(
        &sim,
        NicConfig {
            manageability: true,
            ..NicConfig::default()
        },
    );
    let pools = pool(&p);
    let started = init(&p, &pools).expect("init");
    started.device.wait_for_link(LINK_TIMEOUT).expect("link");
    assert_eq!(sim.violations(), []);
}

#[test]
fn mng_veto_leaves_the_link_alone() {
    let sim = Sim::new();
    let (_id, p) = nic(
        &sim,
        NicConfig {
            mng_veto: true,
            ..NicConfig::default()
        },
    );
    let pools = pool(&p);
    let started = init(&p, &pools).expect("init");
    started.device.wait_for_link(LINK_TIMEOUT).expect("link");
    let kinds: Vec<ViolationKind> = sim.violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, []);
}

#[test]
fn a_missing_nvm_or_a_firmware_error_fails_init_clearly() {
    for (fault, want) in [
        (Fault::NvmMissing, "EEPROM"),
        (Fault::FirmwareError { code: 1 }, "firmware"),
    ] {
        let sim = Sim::new();
        let (id, p) = nic(&sim, NicConfig::default());
        sim.set_fault(id, fault);
        let pools = pool(&p);
        match init(&p, &pools) {
            Ok(_) => panic!("init succeeded with {fault:?}"),
            Err(e) => assert!(e.to_string().contains(want), "{fault:?}: {e}"),
        }
        assert_eq!(pools[0].free_count(), 256);
    }
}

#[test]
fn frames_shorter_than_17_bytes_are_padded_to_17() {
    let sim = Sim::new();
    let (a, pa) = nic(&sim, NicConfig::default());
    // Declared before the queues, so they outlive them.
    let (rx_pools, tx_pools) = (pool(&pa), pool(&pa));
    let mut started = init(&pa, &rx_pools).expect("init");
    started.device.wait_for_link(LINK_TIMEOUT).expect("link");
    for len in [14usize, 15, 16] {
        let mut batch: HVec<Packet<'_>, 32> = HVec::new();
        tx_pools[0].alloc_batch(&mut batch, 1, len);
        batch[0].fill(0xAB);
        started.tx[0].tx_batch(&mut batch);
        sim.advance(Duration::from_micros(50));
        let sent = sim.take_transmitted(a);
        assert_eq!(sent.len(), 1, "{len}-byte frame");
        assert!(sent[0][..len].iter().all(|&b| b == 0xAB));
    }
    assert_eq!(sim.violations(), []);
}
