//! The frames exchanged between the QEMU guest (`qemu_guest`) and the host peer (`qemu_peer`).
//!
//! Both sides compute every frame from its sequence number, so each side checks what it got byte
//! by byte without the frames being stored anywhere. Three kinds of frame, all with the IEEE
//! "local experimental" EtherType 0x88B5 and a 4-byte tag after the Ethernet header:
//! - `PLTX`: guest → host, `count` frames of varying lengths (60..=1514 bytes);
//! - `PLRX`: host → guest, `count` frames of other lengths and another byte pattern;
//! - `PLOK`: guest → host, one report: how many `PLRX` frames the guest received intact, how many
//!   were wrong, and an FNV-1a hash over all the bytes it received.
//!
//! This file is shared by the bins through `#[path]` includes, so not every bin uses every item.
#![allow(dead_code)]

/// EtherType of every test frame (IEEE 802 local experimental 1).
pub const ETHERTYPE: u16 = 0x88B5;
/// MAC address of the host peer (locally administered).
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// Tag of a guest → host data frame.
pub const TAG_TX: &[u8; 4] = b"PLTX";
/// Tag of a host → guest data frame.
pub const TAG_RX: &[u8; 4] = b"PLRX";
/// Tag of the guest's final report.
pub const TAG_REPORT: &[u8; 4] = b"PLOK";
/// Smallest frame used (without FCS).
pub const MIN_FRAME: usize = 60;
/// Largest frame used (without FCS).
pub const MAX_FRAME: usize = 1514;
/// Offset of the payload pattern: 14 header + 4 tag + 4 seq + 4 count.
const PATTERN_OFFSET: usize = 26;

/// Direction of a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Guest → host (`PLTX`).
    GuestToHost,
    /// Host → guest (`PLRX`).
    HostToGuest,
}

/// Length of data frame `seq` in direction `dir`: spread over 60..=1514, first and last exact.
pub fn frame_len(dir: Dir, seq: u32, count: u32) -> usize {
    let span = (MAX_FRAME - MIN_FRAME + 1) as u64;
    if seq == 0 {
        return MIN_FRAME;
    }
    if seq + 1 == count {
        return MAX_FRAME;
    }
    let mul: u64 = match dir {
        Dir::GuestToHost => 389,
        Dir::HostToGuest => 131,
    };
    MIN_FRAME + ((seq as u64 * mul) % span) as usize
}

fn pattern_byte(dir: Dir, seq: u32, k: usize) -> u8 {
    let (a, b, c) = match dir {
        Dir::GuestToHost => (7u32, 13u32, 0x11u32),
        Dir::HostToGuest => (11, 3, 0x5a),
    };
    // The (k >> 8) term breaks the 256-byte period of k * b, so a buffer that is off by a
    // multiple of 256 bytes does not alias to the same bytes.
    let k = k as u32;
    (seq.wrapping_mul(a)
        .wrapping_add(k.wrapping_mul(b))
        .wrapping_add((k >> 8).wrapping_mul(0x65))
        .wrapping_add(c)
        & 0xff) as u8
}

/// Builds data frame `seq` of `count` in direction `dir`, from `src` to `dst`.
pub fn data_frame(dir: Dir, seq: u32, count: u32, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let len = frame_len(dir, seq, count);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(match dir {
        Dir::GuestToHost => TAG_TX,
        Dir::HostToGuest => TAG_RX,
    });
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&count.to_be_bytes());
    for k in PATTERN_OFFSET..len {
        f.push(pattern_byte(dir, seq, k));
    }
    f
}

/// Sequence number of a data frame of direction `dir`, if `frame` carries the right tag.
pub fn data_seq(dir: Dir, frame: &[u8]) -> Option<u32> {
    let tag = match dir {
        Dir::GuestToHost => TAG_TX,
        Dir::HostToGuest => TAG_RX,
    };
    if frame.len() < PATTERN_OFFSET
        || frame[12..14] != ETHERTYPE.to_be_bytes()
        || &frame[14..18] != tag
    {
        return None;
    }
    Some(u32::from_be_bytes([
        frame[18], frame[19], frame[20], frame[21],
    ]))
}

/// Compares `got` with the frame expected at `seq`: `None` if identical, else what differs.
pub fn check_data_frame(
    dir: Dir,
    seq: u32,
    count: u32,
    dst: [u8; 6],
    src: [u8; 6],
    got: &[u8],
) -> Option<String> {
    let want = data_frame(dir, seq, count, dst, src);
    if got.len() != want.len() {
        return Some(format!(
            "frame {seq}: length {} instead of {}",
            got.len(),
            want.len()
        ));
    }
    let first_bad = got.iter().zip(&want).position(|(g, w)| g != w)?;
    let bad = got.iter().zip(&want).filter(|(g, w)| g != w).count();
    Some(format!(
        "frame {seq}: {bad} byte(s) differ, first at offset {first_bad}: got {:#04x}, want {:#04x}",
        got[first_bad], want[first_bad]
    ))
}

/// 32-bit FNV-1a, continued from `h` (start with [`FNV_INIT`]).
pub fn fnv1a(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Initial value of [`fnv1a`].
pub const FNV_INIT: u32 = 0x811c_9dc5;

/// The guest's final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Host → guest frames received and identical to the expected bytes.
    pub good: u32,
    /// Host → guest frames received with wrong length or bytes, or unexpected frames.
    pub bad: u32,
    /// FNV-1a over the bytes of every frame received, in order of arrival.
    pub hash: u32,
}

/// Builds the report frame (padded to the minimum frame size).
pub fn report_frame(r: &Report, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(MIN_FRAME);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(TAG_REPORT);
    f.extend_from_slice(&r.good.to_be_bytes());
    f.extend_from_slice(&r.bad.to_be_bytes());
    f.extend_from_slice(&r.hash.to_be_bytes());
    f.resize(MIN_FRAME, 0);
    f
}

/// Parses a report frame.
pub fn parse_report(frame: &[u8]) -> Option<Report> {
    if frame.len() < 30 || frame[12..14] != ETHERTYPE.to_be_bytes() || &frame[14..18] != TAG_REPORT
    {
        return None;
    }
    let word = |o: usize| u32::from_be_bytes([frame[o], frame[o + 1], frame[o + 2], frame[o + 3]]);
    Some(Report {
        good: word(18),
        bad: word(22),
        hash: word(26),
    })
}

/// Expected FNV-1a of the guest's report when it received all `count` host → guest frames.
pub fn expected_rx_hash(count: u32, guest_mac: [u8; 6]) -> u32 {
    (0..count).fold(FNV_INIT, |h, seq| {
        fnv1a(
            h,
            &data_frame(Dir::HostToGuest, seq, count, guest_mac, PEER_MAC),
        )
    })
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC address as "aa:bb:cc:dd:ee:ff".
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    #[test]
    fn lengths_cover_the_range_and_hit_both_ends() {
        let lens: Vec<usize> = (0..64)
            .map(|s| frame_len(Dir::GuestToHost, s, 64))
            .collect();
        assert_eq!(lens[0], MIN_FRAME);
        assert_eq!(lens[63], MAX_FRAME);
        assert!(lens.iter().all(|&l| (MIN_FRAME..=MAX_FRAME).contains(&l)));
        let distinct: std::collections::BTreeSet<_> = lens.iter().collect();
        assert!(distinct.len() > 50, "lengths should vary: {lens:?}");
    }

    #[test]
    fn frames_round_trip_and_corruption_is_found() {
        for dir in [Dir::GuestToHost, Dir::HostToGuest] {
            for seq in 0..16 {
                let f = data_frame(dir, seq, 16, PEER_MAC, GUEST);
                assert_eq!(f.len(), frame_len(dir, seq, 16));
                assert_eq!(data_seq(dir, &f), Some(seq));
                assert_eq!(check_data_frame(dir, seq, 16, PEER_MAC, GUEST, &f), None);
                let mut bad = f.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x40;
                let msg = check_data_frame(dir, seq, 16, PEER_MAC, GUEST, &bad).unwrap();
                assert!(msg.contains(&format!("offset {last}")), "{msg}");
                let short = &f[..f.len() - 1];
                assert!(check_data_frame(dir, seq, 16, PEER_MAC, GUEST, short)
                    .unwrap()
                    .contains("length"));
            }
        }
        let tx = data_frame(Dir::GuestToHost, 3, 8, PEER_MAC, GUEST);
        assert_eq!(data_seq(Dir::HostToGuest, &tx), None);
    }

    #[test]
    fn a_shifted_buffer_never_aliases() {
        // A frame read from a buffer that is off by `shift` bytes must differ in most bytes.
        let f = data_frame(Dir::HostToGuest, 9, 16, PEER_MAC, GUEST);
        for shift in [1usize, 4, 64, 256, 512, 1024] {
            let same = f.iter().zip(&f[shift..]).filter(|(a, b)| a == b).count();
            assert!(
                same * 10 < f.len(),
                "shift {shift}: {same} of {} bytes alias",
                f.len()
            );
        }
    }

    #[test]
    fn report_round_trips() {
        let r = Report {
            good: 64,
            bad: 1,
            hash: 0xdead_beef,
        };
        let f = report_frame(&r, PEER_MAC, GUEST);
        assert_eq!(f.len(), MIN_FRAME);
        assert_eq!(parse_report(&f), Some(r));
        assert_eq!(
            parse_report(&data_frame(Dir::GuestToHost, 0, 1, PEER_MAC, GUEST)),
            None
        );
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("52:54:00:12:34:56"), Some(GUEST));
        assert_eq!(fmt_mac(&GUEST), "52:54:00:12:34:56");
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(parse_mac("zz:54:00:12:34:56"), None);
    }

    #[test]
    fn fnv_known_value() {
        // FNV-1a 32 of "a" is 0xe40c292c.
        assert_eq!(fnv1a(FNV_INIT, b"a"), 0xe40c_292c);
    }
}
