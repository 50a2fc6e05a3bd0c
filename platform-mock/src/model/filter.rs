//! The L2 filter: broadcast, promiscuous, exact (RAR) and hash (MTA) matches.

use super::*;

pub(crate) fn l2_accept(n: &mut Nic, da: &[u8]) -> bool {
    let fctrl = n.r(FCTRL);
    if da == [0xFF; 6] {
        return fctrl & (FCTRL_MPE | FCTRL_BAM) != 0;
    }
    let multicast = da[0] & 1 != 0;
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
