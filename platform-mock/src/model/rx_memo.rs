//! The receive path's verdicts on a frame's first bytes, kept for the next frame with the same
//! first [`KEY_BYTES`] bytes and length: whether the L2 and VLAN filters pass it (§7.1.1.1) and
//! what the parser found. Frames of one stream share them (Ethernet header and the IPv4
//! header up to the protocol; flows differ in addresses and ports further on), so a stream
//! is filtered and parsed once, not once per frame.
//!
//! Both verdicts depend on nothing else: the filters read bytes 0..6 and 12..16 and registers,
//! the parser of an untagged frame bytes 12..24 and the length. A tagged frame's parse reads
//! past the key, so it is not kept. The registers' part: the memo is dropped with the receive
//! set-up ([`Nic::rx_setup`]), on every register write. Debug builds compare a kept verdict
//! with a fresh one on every use.

use super::filter::{l2_accept, vlan_accept};
use super::*;

/// Bytes of a frame a verdict depends on (with its length).
pub(crate) const KEY_BYTES: usize = 24;

/// The last verdict, for frames that begin with `key` and are `len` bytes long.
#[derive(Clone, Copy, Default)]
pub(crate) struct RxMemo {
    pub(crate) valid: bool,
    len: usize,
    key: [u64; 3],
    pass: bool,
    parsed: rss::Parsed,
}

fn key_of(frame: &[u8]) -> Option<[u64; 3]> {
    let b: &[u8; KEY_BYTES] = frame.first_chunk()?;
    let word = |k: usize| u64::from_ne_bytes(b[8 * k..8 * k + 8].try_into().expect("8 bytes"));
    Some([word(0), word(1), word(2)])
}

/// The filters' verdict and the parse of `frame`, as computed without the memo.
#[inline(always)]
fn fresh(n: &mut Nic, frame: &[u8]) -> (bool, rss::Parsed) {
    let (fctrl, vlnctrl) = (n.rxs.fctrl, n.rxs.vlnctrl);
    let pass = l2_accept(n, fctrl, &frame[..6]) && vlan_accept(n, vlnctrl, frame);
    (pass, rss::parse(frame))
}

/// Whether the L2 and VLAN filters pass `frame` (at least 6 bytes), and its parse; from the
/// memo when the last frame kept began the same. [`Nic::rx_setup`] must be current.
#[inline(always)]
pub(crate) fn filter_and_parse(n: &mut Nic, frame: &[u8]) -> (bool, rss::Parsed) {
    let key = key_of(frame);
    let m = &n.rx_memo;
    if let Some(k) = key {
        if m.valid && m.len == frame.len() && m.key == k {
            let kept = (m.pass, m.parsed);
            #[cfg(debug_assertions)]
            {
                let f = fresh(n, frame);
                assert!(f.0 == kept.0 && same(&f.1, &kept.1), "kept receive verdict");
            }
            return kept;
        }
    }
    let (pass, parsed) = fresh(n, frame);
    if let (Some(key), 14) = (key, parsed.l3) {
        n.rx_memo = RxMemo {
            valid: true,
            len: frame.len(),
            key,
            pass,
            parsed,
        };
    }
    (pass, parsed)
}

/// Two parses are the same.
#[cfg(any(debug_assertions, test))]
fn same(a: &rss::Parsed, b: &rss::Parsed) -> bool {
    (a.pkt_type, a.ip, a.l3, a.l4, a.proto, a.v4_plain)
        == (b.pkt_type, b.ip, b.l3, b.l4, b.proto, b.v4_plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random frames whose first bytes often repeat (tagged or not, IPv4 with options or
    /// fragments, IPv6, other types, unicast, multicast, broadcast), and random writes to the
    /// filter registers between them: the memo gives the fresh verdict every time.
    #[test]
    fn kept_verdicts_equal_fresh_ones() {
        let mut n = Nic::new(NicConfig::default(), Duration::ZERO);
        let mac = n.cfg.mac;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut frame = vec![0u8; 80];
        let (mut hits, mut kept) = (0, 0);
        let steps = if cfg!(miri) { 300 } else { 20_000 };
        for step in 0..steps {
            match rnd(16) {
                // A register the filters read.
                0 => {
                    let regs = [
                        FCTRL,
                        VLNCTRL,
                        VFTA + 4 * rnd(128) as u32,
                        MTA + 4 * rnd(128) as u32,
                        MCSTCTRL,
                    ];
                    let off = regs[rnd(regs.len() as u64) as usize];
                    let v = match off {
                        VLNCTRL => {
                            [0x8100, 0x8100 | VLNCTRL_VFE, 0x88A8 | VLNCTRL_CFIEN][rnd(3) as usize]
                        }
                        _ => rnd(1 << 32) as u32,
                    };
                    n.set(off, v);
                }
                // A new frame: a template, then random bytes in the key or past it.
                1..=3 => {
                    let da: [u8; 6] = match rnd(4) {
                        0 => [0xFF; 6],
                        1 => [0x01, 0, 0x5E, 0, 0, rnd(256) as u8],
                        2 => [2, 0, 0, 0, 0, rnd(4) as u8],
                        _ => mac,
                    };
                    frame.resize(60 + rnd(40) as usize, 0);
                    frame[..6].copy_from_slice(&da);
                    let (et, l3) = match rnd(6) {
                        0 => {
                            frame[12..14].copy_from_slice(&[0x81, 0x00]);
                            frame[14..16].copy_from_slice(&(rnd(1 << 16) as u16).to_be_bytes());
                            (0x0800u16, 18)
                        }
                        1 => (0x86DD, 14),
                        2 => (0x0806, 14),
                        _ => (0x0800, 14),
                    };
                    frame[l3 - 2..l3].copy_from_slice(&et.to_be_bytes());
                    frame[l3] = [0x45, 0x46, 0x60, 0x44][rnd(4) as usize];
                    frame[l3 + 6] = [0, 0x20, 0x40][rnd(3) as usize];
                    frame[l3 + 9] = [6, 17, 1][rnd(3) as usize];
                }
                4 => {
                    let at = rnd(frame.len() as u64) as usize;
                    frame[at] = rnd(256) as u8;
                }
                5 => frame.resize(60 + rnd(40) as usize, 0),
                _ => {}
            }
            n.rx_setup();
            let was = n.rx_memo.valid && key_of(&frame).is_some_and(|k| k == n.rx_memo.key);
            let got = filter_and_parse(&mut n, &frame);
            let want = fresh(&mut n, &frame);
            assert!(got.0 == want.0 && same(&got.1, &want.1), "step {step}");
            hits += usize::from(was && n.rx_memo.len == frame.len());
            kept += usize::from(n.rx_memo.valid);
        }
        assert!(hits > steps / 4 && kept > steps / 2, "{hits} hits");
    }
}
