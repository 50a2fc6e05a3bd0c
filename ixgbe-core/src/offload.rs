//! Checksum and VLAN offloads: what the device checked on receive, surfaced on each
//! [`Packet`] (datasheet §7.1.11, write-back status and error bits §7.1.6.2), and what it should
//! fill in and insert on transmit ([`TxOffload`], context descriptors §7.2.3.2.3).
//!
//! The 82599 checks the IPv4 header checksum and the TCP or UDP checksum (over IPv4 and IPv6)
//! of every frame it parses; RXCSUM has no switch for that (§8.2.3.7.5: IPPCSE and PCSD are
//! about the fragment checksum). [`Config::rx_checksum`](crate::Config::rx_checksum) decides
//! whether the driver passes the result on; off (the default), every packet says
//! [`Checksum::NotChecked`] and the receive loop does not look at the bits at all.
//!
//! What a packet carries is one 32-bit word: a byte of flags and the 16-bit VLAN tag (see
//! `docs/offloads.md`). The flags are copied from the write-back under a per-queue mask, so a
//! bit the queue did not ask for (a VLAN flag with stripping off) never reaches the program,
//! whatever the device writes.

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

/// For a receiver that trusts `o` instead of verifying checksums itself (smoltcp with
/// hardware-verified capabilities): false when the device found a checksum wrong, or when it
/// did not check one an untagged IPv4 frame has (the IPv4 header; TCP, or UDP with a checksum)
/// and software finds it wrong. Frames that are not IPv4 pass: they are not this check's.
#[cfg(feature = "smoltcp")]
pub(crate) fn ipv4_checksums_hold(frame: &[u8], o: &RxOffload) -> bool {
    match (o.ipv4_header, o.l4) {
        (Checksum::Bad, _) | (_, Checksum::Bad) => false,
        (Checksum::Good, Checksum::Good) => true,
        _ => verify_ipv4(frame, o),
    }
}

/// Software's check of what the device did not check in an untagged IPv4 frame.
#[cfg(feature = "smoltcp")]
#[cold]
fn verify_ipv4(frame: &[u8], o: &RxOffload) -> bool {
    let Some(&[0x08, 0x00, vihl]) = frame.get(12..15) else {
        return true;
    };
    let ihl = usize::from(vihl & 0xF) * 4;
    let Some(header) = frame.get(14..14 + ihl) else {
        return true; // smoltcp drops what it cannot parse
    };
    if vihl >> 4 != 4 || ihl < 20 {
        return true;
    }
    if o.ipv4_header != Checksum::Good && checksum(header, 0) != 0 {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3FFF != 0;
    let (proto, field) = match header[9] {
        6 => (6u32, 16),
        17 => (17u32, 6),
        _ => return true,
    };
    let Some(seg) = frame.get(14 + ihl..14 + total.max(ihl)) else {
        return true;
    };
    if o.l4 == Checksum::Good || fragment || seg.len() < field + 2 {
        return true;
    }
    if proto == 17 && seg[6..8] == [0, 0] {
        return true; // sent without a checksum
    }
    let pseudo = u32::from(!checksum(&header[12..20], proto + seg.len() as u32));
    checksum(seg, pseudo) == 0
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

/// The L4 checksum to have the device fill in on transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4Checksum {
    /// None: the L4 bytes go out as they are.
    #[default]
    None,
    /// The TCP checksum.
    Tcp,
    /// The UDP checksum (a result of 0 goes out as 0xFFFF).
    Udp,
}

/// What the device should do to one packet on transmit
/// ([`TxQueue::tx_batch_offload`](crate::TxQueue::tx_batch_offload)): fill in the IPv4 header
/// checksum and the TCP or UDP checksum (IPv4 or IPv6), and insert an 802.1Q tag. The lengths
/// describe the packet in memory (without the tag the device inserts) and must match it:
/// [`TxOffload::for_frame`] reads them from the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TxOffload {
    /// Bytes before the IP header (MACLEN, 14..=127).
    pub mac_len: u8,
    /// Bytes of the IP header, options or IPv6 extension headers included (IPLEN, up to 511).
    pub ip_len: u16,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// Fill in the IPv4 header checksum (IXSM; IPv4 only).
    pub ipv4_checksum: bool,
    /// Fill in this L4 checksum (TXSM). The driver writes the pseudo-header sum into its
    /// field first, as the device expects (§7.2.5.1 in Linux's and DPDK's use).
    pub l4: L4Checksum,
    /// Insert this tag (PCP 15:13, DEI 12, VID 11:0) after the MAC addresses (VLE), with TPID
    /// 0x8100 (DMATXCTL.VT).
    pub vlan: Option<u16>,
}

/// Why a [`TxOffload`] cannot apply to its packet (the packet is then dropped and counted in
/// [`TxCounters::offload_invalid`](crate::TxCounters::offload_invalid)).
pub(crate) type Invalid = &'static str;

/// A context descriptor's contents: `vlan_macip_lens` and TUCMD (§7.2.3.2.3); what the queue
/// caches to write one only when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxContextKey {
    pub(crate) vlan_macip_lens: u32,
    pub(crate) tucmd: u32,
}

impl TxOffload {
    /// Nothing asked: a packet sent like [`TxQueue::tx_batch`](crate::TxQueue::tx_batch) does.
    pub const NONE: TxOffload = TxOffload {
        mac_len: 0,
        ip_len: 0,
        ipv6: false,
        ipv4_checksum: false,
        l4: L4Checksum::None,
        vlan: None,
    };

    /// Every checksum `frame` has (IPv4 header; TCP or UDP over IPv4, or over IPv6 without
    /// extension headers), with the lengths read from its headers (one VLAN tag in memory
    /// allowed); `None` for a frame that is not IP. No tag insertion: see
    /// [`TxOffload::with_vlan`].
    pub fn for_frame(frame: &[u8]) -> Option<TxOffload> {
        let be16 = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let mut mac_len = 14;
        let mut ethertype = be16(12)?;
        if ethertype == 0x8100 {
            ethertype = be16(16)?;
            mac_len = 18;
        }
        let first = *frame.get(mac_len)?;
        let (ipv6, ip_len, proto) = match (ethertype, first >> 4) {
            (0x0800, 4) => (false, u16::from(first & 0xF) * 4, *frame.get(mac_len + 9)?),
            (0x86DD, 6) => (true, 40, *frame.get(mac_len + 6)?),
            _ => return None,
        };
        let l4 = match proto {
            6 => L4Checksum::Tcp,
            17 => L4Checksum::Udp,
            _ => L4Checksum::None,
        };
        Some(TxOffload {
            mac_len: mac_len as u8,
            ip_len,
            ipv6,
            ipv4_checksum: !ipv6,
            l4,
            vlan: None,
        })
    }

    /// The same, and insert `tci` as an 802.1Q tag.
    pub fn with_vlan(mut self, tci: u16) -> Self {
        self.vlan = Some(tci);
        self
    }

    /// True when nothing is asked (no context descriptor needed).
    #[inline(always)]
    pub(crate) fn is_none(&self) -> bool {
        !self.ipv4_checksum && self.l4 == L4Checksum::None && self.vlan.is_none()
    }

    /// The context for this request, after checking it against `frame` so the device is never
    /// given lengths that do not describe the packet (§7.2.3.2.3).
    pub(crate) fn context(&self, frame: &[u8]) -> Result<TxContextKey, Invalid> {
        use crate::descriptors::TX_CTX_CMD;
        let vlan = u32::from(self.vlan.unwrap_or(0)) << 16;
        if !self.ipv4_checksum && self.l4 == L4Checksum::None {
            // A tag only: MACLEN and IPLEN are not used.
            return Ok(TxContextKey {
                vlan_macip_lens: vlan,
                tucmd: 0,
            });
        }
        let (mac, ip) = (usize::from(self.mac_len), usize::from(self.ip_len));
        if !(14..=127).contains(&mac) || ip > 511 {
            return Err("MACLEN must be 14..=127 and IPLEN at most 511");
        }
        let first = *frame.get(mac).ok_or("no IP header at MACLEN")?;
        let l4_min = match self.l4 {
            L4Checksum::None => 0,
            L4Checksum::Tcp => 20,
            L4Checksum::Udp => 8,
        };
        if frame.len() < mac + ip + l4_min {
            return Err("headers longer than the packet");
        }
        let header_ok = if self.ipv6 {
            first >> 4 == 6 && ip >= 40 && !self.ipv4_checksum
        } else {
            first >> 4 == 4 && ip >= 20 && usize::from(first & 0xF) * 4 == ip
        };
        if !header_ok {
            return Err("the IP header at MACLEN does not match IPv4/IPv6 and IPLEN");
        }
        let l4t = match self.l4 {
            L4Checksum::Tcp => TX_CTX_CMD::L4T::Tcp.value,
            _ => TX_CTX_CMD::L4T::Udp.value,
        };
        let ipv4 = if self.ipv6 {
            0
        } else {
            TX_CTX_CMD::IPV4::SET.value
        };
        Ok(TxContextKey {
            vlan_macip_lens: vlan | (mac as u32) << 9 | ip as u32,
            tucmd: ipv4 | l4t,
        })
    }

    /// Prepares the packet's bytes for the device: a zero IPv4 header checksum field with
    /// IXSM, the pseudo-header sum (not complemented) in the L4 checksum field with TXSM. Only
    /// after [`TxOffload::context`] accepted the request for this frame.
    pub(crate) fn prepare(&self, frame: &mut [u8]) -> Result<(), Invalid> {
        let l3 = usize::from(self.mac_len);
        let l4 = l3 + usize::from(self.ip_len);
        if self.ipv4_checksum {
            frame[l3 + 10..l3 + 12].fill(0);
        }
        let (proto, field) = match self.l4 {
            L4Checksum::None => return Ok(()),
            L4Checksum::Tcp => (6u32, 16),
            L4Checksum::Udp => (17u32, 6),
        };
        let be16 = |at: usize| u32::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
        let (addrs, l4_len) = if self.ipv6 {
            let ext = u32::from(self.ip_len) - 40;
            let len = be16(l3 + 4)
                .checked_sub(ext)
                .ok_or("IPv6 payload shorter than IPLEN")?;
            (l3 + 8..l3 + 40, len)
        } else {
            let len = be16(l3 + 2)
                .checked_sub(u32::from(self.ip_len))
                .ok_or("IPv4 total length shorter than IPLEN")?;
            (l3 + 12..l3 + 20, len)
        };
        let sum = !checksum(&frame[addrs], proto + l4_len);
        frame[l4 + field..l4 + field + 2].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The Internet checksum (ones' complement of the ones' complement sum) of `data` as big-endian
/// 16-bit words, with `acc` added in: `!checksum(..)` is the folded sum itself.
pub fn checksum(data: &[u8], mut acc: u32) -> u16 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
        // Fold as we go: no overflow whatever the length.
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    if let [b] = words.remainder() {
        acc += u32::from(*b) << 8;
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
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
