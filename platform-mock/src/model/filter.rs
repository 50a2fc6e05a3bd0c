//! The L2 filter: broadcast, promiscuous, exact (RAR) and hash (MTA) matches; then the VLAN
//! filter (§7.1.1.1: L2 first, then VLAN).

use super::*;

/// Does the L2 filter pass destination address `da`? `fctrl`: FCTRL.
#[inline(always)]
pub(crate) fn l2_accept(n: &mut Nic, fctrl: u32, da: &[u8]) -> bool {
    // Broadcast is a multicast address too (bit 0 of the first byte): test that bit first.
    let multicast = da[0] & 1 != 0;
    if multicast && da == [0xFF; 6] {
        return fctrl & (FCTRL_MPE | FCTRL_BAM) != 0;
    }
    if multicast && fctrl & FCTRL_MPE != 0 || !multicast && fctrl & FCTRL_UPE != 0 {
        return true;
    }
    if n.rar_list().iter().any(|m| m[..] == *da) {
        return true;
    }
    if multicast {
        let mc = n.r(MCSTCTRL);
        if mc & (1 << 2) != 0 {
            let (a, b) = (u32::from(da[4]), u32::from(da[5]));
            let vector = match mc & 3 {
                0 => (a >> 4) | (b << 4),
                1 => (a >> 3) | (b << 5),
                2 => (a >> 2) | (b << 6),
                _ => a | (b << 8),
            } & 0xFFF;
            return n.r(MTA + 4 * (vector >> 5)) & (1 << (vector & 31)) != 0;
        }
    }
    false
}

/// The 802.1Q tag of `frame` (its TCI), if its type after the MAC addresses is `vet`
/// (VLNCTRL.VET).
#[inline(always)]
pub(crate) fn vlan_tag(vet: u16, frame: &[u8]) -> Option<u16> {
    (frame.len() >= 18 && u16::from_be_bytes([frame[12], frame[13]]) == vet)
        .then(|| u16::from_be_bytes([frame[14], frame[15]]))
}

/// VLNCTRL (§8.2.3.7.2): with CFIEN, a tagged frame whose CFI bit differs from VLNCTRL.CFI is
/// discarded; with VFE, a tagged frame passes only if its VLAN ID's bit is set in VFTA
/// (§8.2.3.7.11). Untagged frames always pass. `ctl`: VLNCTRL.
#[inline(always)]
pub(crate) fn vlan_accept(n: &Nic, ctl: u32, frame: &[u8]) -> bool {
    let Some(tci) = vlan_tag((ctl & 0xFFFF) as u16, frame) else {
        return true;
    };
    let cfi = tci & (1 << 12) != 0;
    if ctl & VLNCTRL_CFIEN != 0 && cfi != (ctl & VLNCTRL_CFI != 0) {
        return false;
    }
    if ctl & VLNCTRL_VFE == 0 {
        return true;
    }
    let vid = u32::from(tci & 0xFFF);
    n.r(VFTA + 4 * (vid >> 5)) & (1 << (vid & 31)) != 0
}
