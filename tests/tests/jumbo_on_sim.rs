//! Jumbo frames (HLREG0.JUMBOEN, MAXFRS; datasheet §7.1.6 and §7.2.3): the driver against the
//! simulated 82599, every frame size from 60 bytes to the largest (9724 without CRC, MAXFRS
//! 9728, an MTU of 9710), oversize frames, and a device writing back nonsense.

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Mempool, Packet, PacketChain, Started, DEFAULT_BUF_SIZE};
use platform_mock::{Fault, RxCorruption};
use tests::on_sim::{assert_clean, sim_nic, start};

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The largest frame without CRC: MAXFRS.MFS 9728 − 4.
const LARGEST: usize = 9724;

fn jumbo_config() -> Config {
    Config::default()
        .rx_ring_size(256)
        .tx_ring_size(256)
        .promiscuous(false)
        .mtu(9710)
}

/// A frame of `len` bytes to us whose every byte depends on its length and position (a copy
/// out of one pattern: cheap in a debug build, where the test steps through 9665 sizes).
fn frame(len: usize) -> Vec<u8> {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| (0..2 * LARGEST).map(|k| (k * 31 % 251) as u8).collect());
    let at = len * 7 % LARGEST;
    let mut f = pattern[at..at + len].to_vec();
    f[0..6].copy_from_slice(&MAC);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    f[12..14].copy_from_slice(&0x88B5u16.to_be_bytes()); // local experimental EtherType
    f
}

fn flatten(chain: &PacketChain<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(chain.len());
    for seg in chain.bytes() {
        out.extend_from_slice(seg);
    }
    out
}

/// Every size, or a handful under Miri.
fn sizes() -> Vec<usize> {
    if cfg!(miri) {
        vec![60, 2047, 2048, 2049, 4097, LARGEST]
    } else {
        (60..=LARGEST).collect()
    }
}

#[test]
fn every_frame_size_is_received_and_sent_back_byte_exact() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let Started {
        device,
        mut rx,
        mut tx,
    } = start(&platform, &jumbo_config(), &pools);
    let (rx, tx) = (&mut rx[0], &mut tx[0]);
    let sizes = sizes();
    for group in sizes.chunks(16) {
        let frames: Vec<Vec<u8>> = group.iter().map(|&len| frame(len)).collect();
        for f in &frames {
            sim.inject(nic, f);
        }
        let mut chains = HVec::<PacketChain<'_>, 16>::new();
        assert_eq!(rx.rx_chains(&mut chains, 16), group.len());
        for (chain, f) in chains.iter().zip(&frames) {
            let len = f.len();
            assert_eq!(chain.len(), len);
            assert_eq!(chain.segments().len(), len.div_ceil(2048));
            let same = chain.bytes().zip(f.chunks(2048)).all(|(a, b)| a == b);
            assert!(same, "frame of {len} bytes differs");
        }
        // Back out as they came: one descriptor per buffer.
        assert_eq!(tx.tx_chains(&mut chains), group.len());
        sim.advance(std::time::Duration::from_micros(50));
        let sent = sim.take_transmitted(nic);
        assert_eq!(sent.len(), group.len());
        for (out, f) in sent.iter().zip(&frames) {
            assert!(out == f, "sent frame of {} bytes differs", f.len());
        }
    }
    tx.clean();
    assert_eq!(tx.counters().packets, sizes.len() as u64);
    let c = rx.counters();
    assert_eq!(c.packets, sizes.len() as u64);
    assert_eq!(c.bytes, sizes.iter().sum::<usize>() as u64);
    let s = device.stats();
    assert_eq!(
        (s.rx_packets, s.rx_oversize, s.rx_dropped),
        (c.packets, 0, 0)
    );
    assert_eq!(s.tx_packets, c.packets);
    assert_clean(&sim);
}

#[test]
fn chains_of_any_segmentation_are_sent_byte_exact() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut tx, .. } = start(&platform, &jumbo_config(), &pools);
    let tx = &mut tx[0];
    let lens: &[usize] = if cfg!(miri) {
        &[60, 9724]
    } else {
        &[14, 17, 60, 1514, 4096, 8000, 9724]
    };
    // A header segment of 14 bytes, then the payload in pieces of `piece` bytes.
    for &len in lens {
        for piece in [1, 100, 2048] {
            let f = frame(len);
            let mut chain = PacketChain::new();
            for part in std::iter::once(&f[..14]).chain(f[14..].chunks(piece)) {
                let mut seg = pools[0].alloc().unwrap();
                seg.set_len(part.len()).unwrap();
                seg.copy_from_slice(part);
                if chain.push(seg).is_err() {
                    break;
                }
            }
            if chain.len() != f.len() {
                continue; // more than MAX_SEGMENTS pieces
            }
            let mut chains = HVec::<PacketChain<'_>, 1>::new();
            chains.push(chain).unwrap();
            assert_eq!(tx.tx_chains(&mut chains), 1, "{len} in pieces of {piece}");
            sim.advance(std::time::Duration::from_micros(20));
            // The MAC pads frames shorter than 60 bytes (HLREG0.TXPADEN).
            let mut want = f.clone();
            want.resize(len.max(60), 0);
            assert_eq!(
                sim.take_transmitted(nic),
                [want],
                "{len} in pieces of {piece}"
            );
        }
    }
    // Beyond the maximum (9728 with CRC, +4 for a VLAN tag: 9728 without): dropped, counted.
    let mut chain = PacketChain::new();
    chain.extend_from_slice(&frame(9729), || pools[0].alloc());
    let mut chains = HVec::<PacketChain<'_>, 1>::new();
    chains.push(chain).unwrap();
    assert_eq!(tx.tx_chains(&mut chains), 0);
    assert!(chains.is_empty());
    assert_eq!(tx.counters().oversize, 1);
    sim.advance(std::time::Duration::from_micros(20));
    assert!(sim.take_transmitted(nic).is_empty());
    drop(device);
    assert_clean(&sim);
}

#[test]
fn a_full_ring_takes_a_chain_whole_or_not_at_all() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let config = jumbo_config().tx_ring_size(32);
    let Started { mut tx, .. } = start(&platform, &config, &pools);
    let tx = &mut tx[0];
    // Transmit is stalled: nothing completes, so 31 descriptors take six 5-buffer chains.
    sim.set_fault(nic, Fault::StallTx { queue: 0 });
    let mut chains = HVec::<PacketChain<'_>, 8>::new();
    for k in 0..8 {
        let mut chain = PacketChain::new();
        chain.extend_from_slice(&frame(9000 + k), || pools[0].alloc());
        chains.push(chain).unwrap();
    }
    assert_eq!(tx.tx_chains(&mut chains), 6);
    assert_eq!(tx.in_flight(), 30);
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0].len(), 9006);
    sim.clear_faults(nic);
    sim.advance(std::time::Duration::from_micros(100));
    assert_eq!(tx.tx_chains(&mut chains), 2);
    sim.advance(std::time::Duration::from_micros(100));
    let sent = sim.take_transmitted(nic);
    let want: Vec<Vec<u8>> = (0..8).map(|k| frame(9000 + k)).collect();
    assert_eq!(sent, want);
    assert_clean(&sim);
}

#[test]
fn frames_beyond_the_maximum_are_counted_and_dropped() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut rx, .. } = start(&platform, &jumbo_config(), &pools);
    let mut chains = HVec::<PacketChain<'_>, 8>::new();
    sim.inject(nic, &frame(LARGEST + 1));
    sim.inject(nic, &frame(LARGEST + 300));
    sim.inject(nic, &frame(LARGEST));
    assert_eq!(rx[0].rx_chains(&mut chains, 8), 1);
    assert_eq!(chains[0].len(), LARGEST);
    assert_eq!(device.stats().rx_oversize, 2);
    drop(chains);
    drop((device, rx));
    assert_eq!(pools[0].free_count(), 1024, "every buffer back");
    assert_clean(&sim);
}

#[test]
fn without_jumbo_frames_the_limit_is_1518_whatever_maxfrs_says() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let config = Config::default().promiscuous(false);
    let Started { device, mut rx, .. } = start(&platform, &config, &pools);
    sim.inject(nic, &frame(1515));
    sim.inject(nic, &frame(1514));
    let mut batch = HVec::<Packet<'_>, 8>::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 8), 1);
    assert_eq!(batch[0].len(), 1514);
    assert_eq!(device.stats().rx_oversize, 1);
    assert_clean(&sim);
}

#[test]
fn a_smaller_maximum_frame_size_is_honoured() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let config = Config::default().promiscuous(false).max_frame_size(4000);
    let Started { device, mut rx, .. } = start(&platform, &config, &pools);
    sim.inject(nic, &frame(3997));
    sim.inject(nic, &frame(3996));
    let mut chains = HVec::<PacketChain<'_>, 8>::new();
    assert_eq!(rx[0].rx_chains(&mut chains, 8), 1);
    assert_eq!(chains[0].len(), 3996);
    assert_eq!(device.stats().rx_oversize, 1);
    assert_clean(&sim);
}

#[test]
fn rx_batch_drops_jumbo_frames_whole_and_keeps_the_small_ones() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut rx, .. } = start(&platform, &jumbo_config(), &pools);
    for len in [60, 5000, 61, 2049, 2048, 9000, 62] {
        sim.inject(nic, &frame(len));
    }
    let mut batch = HVec::<Packet<'_>, 16>::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 16), 4);
    let lens: Vec<usize> = batch.iter().map(|p| p.len()).collect();
    assert_eq!(lens, [60, 61, 2048, 62]);
    assert_eq!(batch[3][..], frame(62)[..]);
    assert_eq!(rx[0].counters().no_eop, 3);
    drop(batch);
    drop((device, rx));
    assert_eq!(pools[0].free_count(), 1024);
    assert_clean(&sim);
}

#[test]
fn nonsense_write_backs_are_counted_without_panic_or_leak() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut rx, .. } = start(&platform, &jumbo_config(), &pools);
    let q = &mut rx[0];
    let mut chains = HVec::<PacketChain<'_>, 32>::new();
    // EOP never set on 20 write-backs in a row: no frame ends within MAX_SEGMENTS.
    sim.set_fault(
        nic,
        Fault::RxWriteback {
            corruption: RxCorruption::NoEop,
            count: 20,
        },
    );
    for _ in 0..20 {
        sim.inject(nic, &frame(100));
    }
    assert_eq!(q.rx_chains(&mut chains, 32), 0);
    assert_eq!(q.counters().chain_too_long, 1);
    // The rest of that "frame" runs to the next EOP, which ends it; the frame after is good.
    sim.inject(nic, &frame(101));
    sim.inject(nic, &frame(4000));
    assert_eq!(q.rx_chains(&mut chains, 32), 1);
    assert_eq!(flatten(&chains[0]), frame(4000));
    chains.clear();
    // Lengths beyond the buffer, of zero, and a MAC error, each on a jumbo frame's descriptor.
    for (corruption, bad_length, errors) in [
        (RxCorruption::LengthTooLong, 1, 0),
        (RxCorruption::ZeroLength, 2, 0),
        (RxCorruption::ErrorBit, 2, 1),
    ] {
        sim.set_fault(
            nic,
            Fault::RxWriteback {
                corruption,
                count: 1,
            },
        );
        // The error bit counts on the EOP descriptor only: a one-buffer frame gets it.
        let len = if corruption == RxCorruption::ErrorBit {
            1000
        } else {
            5000
        };
        sim.inject(nic, &frame(len));
        sim.inject(nic, &frame(3000));
        assert_eq!(q.rx_chains(&mut chains, 32), 1, "{corruption:?}");
        assert_eq!(flatten(&chains[0]), frame(3000));
        chains.clear();
        let c = q.counters();
        assert_eq!(
            (c.bad_length, c.errors),
            (bad_length, errors),
            "{corruption:?}"
        );
    }
    drop(chains);
    drop((device, rx));
    assert_eq!(pools[0].free_count(), 1024, "every buffer back");
}

#[test]
fn init_refuses_maximum_frame_sizes_out_of_range() {
    let (_sim, _nic, platform) = sim_nic(MAC);
    for bad in [63, 9729] {
        let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
        let config = Config::default().max_frame_size(bad);
        assert!(ixgbe_core::Device::init(platform.clone(), &config, &pools).is_err());
    }
}
