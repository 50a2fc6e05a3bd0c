//! Checksum and VLAN offloads: what the device checked on receive, surfaced on each
//! [`Packet`] (datasheet §7.1.11, write-back status and error bits §7.1.6.2).
//!
//! The 82599 checks the IPv4 header checksum and the TCP or UDP checksum (over IPv4 and IPv6)
//! of every frame it parses; RXCSUM has no switch for that (§8.2.3.7.5: IPPCSE and PCSD are
//! about the fragment checksum). [`Config::rx_checksum`](crate::Config::rx_checksum) decides
//! whether the driver passes the result on; off (the default), every packet says
//! [`Checksum::NotChecked`] and the receive loop does not look at the bits at all.
//!
//! What a packet carries is one byte of flags, packed into the top of its buffer index, and
//! the 16-bit VLAN tag (see `docs/offloads.md`). The flags are copied from the write-back under
//! a per-queue mask, so a bit the queue did not ask for (a VLAN flag with stripping off) never
//! reaches the program, whatever the device writes.

use crate::mempool::Packet;

/// Status bits of the advanced Rx write-back (status_error dword) the offloads use.
pub(crate) mod rx_bits {
    /// VP: an 802.1Q frame whose tag the device stripped (RXDCTL.VME, §8.2.3.8.6).
    pub(crate) const VP: u32 = 1 << 3;
    /// UDPCS: the L4 checksum was computed over a UDP datagram.
    pub(crate) const UDPCS: u32 = 1 << 4;
    /// L4CS (L4I): the TCP or UDP checksum was computed.
    pub(crate) const L4CS: u32 = 1 << 5;
    /// IPCS: the IPv4 header checksum was computed.
    pub(crate) const IPCS: u32 = 1 << 6;
    /// L4E (TCPE): the TCP or UDP checksum is wrong.
    pub(crate) const L4E: u32 = 1 << 30;
    /// IPE: the IPv4 header checksum is wrong.
    pub(crate) const IPE: u32 = 1 << 31;
    /// Every bit [`Config::rx_checksum`](crate::Config::rx_checksum) passes on.
    pub(crate) const CHECKSUMS: u32 = UDPCS | L4CS | IPCS | L4E | IPE;
}

/// The packet's flag byte: status bits 6:3 in bits 3:0, error bits 31:30 in bits 5:4.
mod flag {
    pub(super) const VP: u8 = 1 << 0;
    pub(super) const UDPCS: u8 = 1 << 1;
    pub(super) const L4CS: u8 = 1 << 2;
    pub(super) const IPCS: u8 = 1 << 3;
    pub(super) const L4E: u8 = 1 << 4;
    pub(super) const IPE: u8 = 1 << 5;
}

/// The flag byte of a write-back's second word, keeping only the status bits in `mask`.
#[inline(always)]
pub(crate) fn rx_flags(word1: u64, mask: u32) -> u8 {
    let s = word1 as u32 & mask;
    (((s >> 3) & 0xF) | ((s >> 26) & 0x30)) as u8
}

/// The result of one checksum check by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Not checked: offload off, not that kind of packet (not IPv4 for the header checksum,
    /// not TCP or UDP, a fragment, IPv6 extension headers), or a UDP/IPv4 datagram sent without
    /// a checksum. Software must check it if it cares.
    NotChecked,
    /// The device computed it and it is right.
    Good,
    /// The device computed it and it is wrong.
    Bad,
}

/// What the device said about a received frame, as far as the queue asked
/// ([`Packet::rx_offload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RxOffload {
    /// The IPv4 header checksum.
    pub ipv4_header: Checksum,
    /// The TCP or UDP checksum (IPv4 or IPv6).
    pub l4: Checksum,
    /// The frame was UDP (meaningful when `l4` is not [`Checksum::NotChecked`]).
    pub udp: bool,
    /// The 802.1Q tag (PCP 15:13, DEI 12, VID 11:0) the device stripped from the frame, with
    /// [`Config::vlan_strip`](crate::Config::vlan_strip) on.
    pub vlan: Option<u16>,
}

impl Packet<'_> {
    /// What the device checked and stripped when this frame was received (all
    /// [`Checksum::NotChecked`] and no tag for a packet from [`crate::Mempool::alloc`], or with
    /// the offloads off).
    ///
    /// An L4 error on a UDP/IPv4 datagram whose checksum field is 0 (sent without a checksum,
    /// which the 82599 flags as an error: the erratum Linux's ixgbe works around) reads as
    /// [`Checksum::NotChecked`]; the frame's bytes are looked at only in that case.
    pub fn rx_offload(&self) -> RxOffload {
        let (f, tag) = self.rx_parts();
        let has = |bit: u8| f & bit != 0;
        let ipv4_header = match (has(flag::IPCS), has(flag::IPE)) {
            (false, _) => Checksum::NotChecked,
            (true, false) => Checksum::Good,
            (true, true) => Checksum::Bad,
        };
        let udp = has(flag::UDPCS);
        let l4 = match (has(flag::L4CS), has(flag::L4E)) {
            (false, _) => Checksum::NotChecked,
            (true, false) => Checksum::Good,
            (true, true) if udp && udp_ipv4_without_checksum(self) => Checksum::NotChecked,
            (true, true) => Checksum::Bad,
        };
        RxOffload {
            ipv4_header,
            l4,
            udp,
            vlan: has(flag::VP).then_some(tag),
        }
    }
}

/// True for a UDP/IPv4 frame (one VLAN tag allowed) whose UDP checksum field is 0.
#[cold]
fn udp_ipv4_without_checksum(frame: &[u8]) -> bool {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut l3 = 14;
    let mut ethertype = be16(12);
    if ethertype == Some(0x8100) {
        ethertype = be16(16);
        l3 = 18;
    }
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    if ethertype != Some(0x0800) || vihl >> 4 != 4 || frame.get(l3 + 9) != Some(&17) {
        return false;
    }
    let l4 = l3 + usize::from(vihl & 0xF) * 4;
    be16(l4 + 6) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_keep_only_the_masked_status_bits() {
        use rx_bits::*;
        let all = u64::from(VP | UDPCS | L4CS | IPCS | L4E | IPE | 0b11 | 1 << 29) | 0xFFFF << 48;
        assert_eq!(rx_flags(all, 0), 0);
        assert_eq!(rx_flags(all, VP), flag::VP);
        assert_eq!(rx_flags(all, CHECKSUMS), 0b11_1110);
        assert_eq!(rx_flags(u64::from(IPE), CHECKSUMS), flag::IPE);
        assert_eq!(
            rx_flags(u64::from(L4E | L4CS), CHECKSUMS),
            flag::L4E | flag::L4CS
        );
    }

    #[test]
    fn zero_udp_checksum_is_recognised_with_and_without_a_tag() {
        let mut f = [0u8; 64];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        assert!(udp_ipv4_without_checksum(&f));
        f[40] = 1;
        assert!(!udp_ipv4_without_checksum(&f));
        f[23] = 6;
        f[40] = 0;
        assert!(!udp_ipv4_without_checksum(&f), "TCP");
        let mut t = [0u8; 64];
        t[12..14].copy_from_slice(&[0x81, 0x00]);
        t[16..18].copy_from_slice(&[0x08, 0x00]);
        t[18] = 0x46; // options: the UDP header starts at 18 + 24
        t[27] = 17;
        t[42 + 6] = 0xAB;
        assert!(!udp_ipv4_without_checksum(&t));
        t[42 + 6] = 0;
        assert!(udp_ipv4_without_checksum(&t));
        assert!(!udp_ipv4_without_checksum(&t[..20]), "truncated");
        assert!(!udp_ipv4_without_checksum(&[]));
    }
}
