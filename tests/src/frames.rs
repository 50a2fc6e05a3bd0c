//! Test frames with real IPv4 / IPv6, TCP / UDP headers and checksums, optionally 802.1Q-tagged,
//! and an independent checker of those checksums (for what the simulated device computes).

/// The shape of a test frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// An 802.1Q tag (PCP/DEI/VID) after the MAC addresses.
    pub vlan: Option<u16>,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// TCP instead of UDP.
    pub tcp: bool,
    /// Payload bytes after the L4 header.
    pub payload: usize,
}

impl Shape {
    /// An untagged UDP/IPv4 frame with `payload` bytes.
    pub fn udp4(payload: usize) -> Shape {
        Shape {
            vlan: None,
            ipv6: false,
            tcp: false,
            payload,
        }
    }
}

/// Ones' complement sum of big-endian 16-bit words (odd byte padded), folded to 16 bits.
pub fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

/// Offsets of the L3 and L4 headers of a frame built by [`build`] (or any frame with at most one
/// tag, IPv4 or IPv6 without extension headers).
pub fn offsets(frame: &[u8]) -> (usize, usize) {
    let l3 = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    let l4 = if frame[l3] >> 4 == 4 {
        l3 + usize::from(frame[l3] & 0xF) * 4
    } else {
        l3 + 40
    };
    (l3, l4)
}

/// Offset of the L4 checksum field.
pub fn l4_checksum_at(frame: &[u8]) -> usize {
    let (l3, l4) = offsets(frame);
    let proto = if frame[l3] >> 4 == 4 {
        frame[l3 + 9]
    } else {
        frame[l3 + 6]
    };
    l4 + if proto == 6 { 16 } else { 6 }
}

/// The pseudo-header sum (not complemented) for the L4 segment of `frame`.
pub fn pseudo_sum(frame: &[u8]) -> u32 {
    let (l3, l4) = offsets(frame);
    if frame[l3] >> 4 == 4 {
        let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
        let len = (l3 + total - l4) as u32;
        sum16(&frame[l3 + 12..l3 + 20], u32::from(frame[l3 + 9]) + len)
    } else {
        let len = u32::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
        sum16(&frame[l3 + 8..l3 + 40], u32::from(frame[l3 + 6]) + len)
    }
}

/// A frame of `shape` with correct IPv4 header and L4 checksums, seeded by `seed` (addresses,
/// ports and payload bytes).
pub fn build(shape: Shape, seed: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x42];
    if let Some(tag) = shape.vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&tag.to_be_bytes());
    }
    let l4_len = if shape.tcp { 20 } else { 8 } + shape.payload;
    let proto = if shape.tcp { 6 } else { 17 };
    if shape.ipv6 {
        f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        f.extend((0..32).map(|k| seed.wrapping_add(k)));
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0, seed, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, seed, 10, 0, 1, 1]);
    }
    let l4 = f.len();
    f.extend_from_slice(&(1000 + u16::from(seed)).to_be_bytes());
    f.extend_from_slice(&4242u16.to_be_bytes());
    if shape.tcp {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x10, 0, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend((0..shape.payload).map(|k| (k as u8).wrapping_mul(31).wrapping_add(seed)));
    let (l3, _) = offsets(&f);
    if !shape.ipv6 {
        let c = !(sum16(&f[l3..l3 + 20], 0) as u16);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let mut c = !(sum16(&f[l4..], pseudo_sum(&f)) as u16);
    if !shape.tcp && c == 0 {
        c = 0xFFFF;
    }
    let at = l4_checksum_at(&f);
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// Flips a bit of the IPv4 header checksum.
pub fn break_ip_checksum(frame: &mut [u8]) {
    let (l3, _) = offsets(frame);
    frame[l3 + 11] ^= 1;
}

/// Flips a bit of the L4 checksum.
pub fn break_l4_checksum(frame: &mut [u8]) {
    let at = l4_checksum_at(frame);
    frame[at + 1] ^= 1;
}

/// (IPv4 header checksum right, L4 checksum right) as software computes them; the first is
/// `None` for IPv6. A UDP checksum of 0 over IPv4 (none sent) counts as wrong here.
pub fn verify(frame: &[u8]) -> (Option<bool>, bool) {
    let (l3, l4) = offsets(frame);
    let ip = (frame[l3] >> 4 == 4).then(|| sum16(&frame[l3..l4], 0) == 0xFFFF);
    let end = if frame[l3] >> 4 == 4 {
        l3 + usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]))
    } else {
        l4 + usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]))
    };
    let at = l4_checksum_at(frame);
    let l4_ok = frame[at..at + 2] != [0, 0] && sum16(&frame[l4..end], pseudo_sum(frame)) == 0xFFFF;
    (ip, l4_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_verify_and_broken_ones_do_not() {
        for vlan in [None, Some(0x2005)] {
            for ipv6 in [false, true] {
                for tcp in [false, true] {
                    let shape = Shape {
                        vlan,
                        ipv6,
                        tcp,
                        payload: 33,
                    };
                    let f = build(shape, 7);
                    assert_eq!(verify(&f), ((!ipv6).then_some(true), true), "{shape:?}");
                    let mut g = f.clone();
                    break_l4_checksum(&mut g);
                    assert!(!verify(&g).1);
                    if !ipv6 {
                        let mut g = f.clone();
                        break_ip_checksum(&mut g);
                        assert_eq!(verify(&g), (Some(false), true));
                    }
                }
            }
        }
    }
}
