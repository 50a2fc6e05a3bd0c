//! What DPDK's ixgbe PMD (drivers/net/ixgbe, 24.11) does on probe that Linux's driver does not,
//! done the way its code does it: its first EEPROM read (word 0, in
//! ixgbe_validate_eeprom_checksum_generic) comes before the EEPROM parameters are known, so
//! ixgbe_read_eeprom_82599 bit-bangs the SPI EEPROM through EEC
//! (ixgbe_read_eeprom_buffer_bit_bang) instead of using EERD.

mod common;

use std::time::Duration;

use common::*;
use ixgbe_core::Platform;
use platform_mock::SimPlatform;

const EE_SK: u32 = 1 << 0;
const EE_CS: u32 = 1 << 1;
const EE_DI: u32 = 1 << 2;
const EE_DO: u32 = 1 << 3;
const EE_REQ: u32 = 1 << 6;
const EE_GNT: u32 = 1 << 7;
const US: Duration = Duration::from_micros(1);

/// ixgbe_raise_eeprom_clk / ixgbe_lower_eeprom_clk: write, flush (a read), 1 µs.
fn clk(p: &SimPlatform, eec: &mut u32, high: bool) {
    if high {
        *eec |= EE_SK;
    } else {
        *eec &= !EE_SK;
    }
    wr(p, EEC, *eec);
    rd(p, STATUS);
    p.delay(US);
}

/// ixgbe_shift_out_eeprom_bits.
fn shift_out(p: &SimPlatform, data: u16, count: u16) {
    let mut eec = rd(p, EEC);
    let mut mask = 1u32 << (count - 1);
    for _ in 0..count {
        if u32::from(data) & mask != 0 {
            eec |= EE_DI;
        } else {
            eec &= !EE_DI;
        }
        wr(p, EEC, eec);
        rd(p, STATUS);
        p.delay(US);
        clk(p, &mut eec, true);
        clk(p, &mut eec, false);
        mask >>= 1;
    }
    eec &= !EE_DI;
    wr(p, EEC, eec);
    rd(p, STATUS);
}

/// ixgbe_shift_in_eeprom_bits.
fn shift_in(p: &SimPlatform, count: u16) -> u16 {
    let mut eec = rd(p, EEC) & !(EE_DO | EE_DI);
    let mut data = 0u16;
    for _ in 0..count {
        data <<= 1;
        clk(p, &mut eec, true);
        eec = rd(p, EEC) & !EE_DI;
        if eec & EE_DO != 0 {
            data |= 1;
        }
        clk(p, &mut eec, false);
    }
    data
}

/// ixgbe_standby_eeprom: CS high, then low again.
fn standby(p: &SimPlatform) {
    let mut eec = rd(p, EEC);
    eec |= EE_CS;
    wr(p, EEC, eec);
    rd(p, STATUS);
    p.delay(US);
    eec &= !EE_CS;
    wr(p, EEC, eec);
    rd(p, STATUS);
    p.delay(US);
}

/// ixgbe_acquire_eeprom (the SW/FW semaphore left out): EE_REQ, up to 1000 polls of EE_GNT
/// 5 µs apart, then CS and SK low. False when the grant never came (EE_REQ dropped again).
fn acquire(p: &SimPlatform) -> bool {
    let mut eec = rd(p, EEC) | EE_REQ;
    wr(p, EEC, eec);
    for _ in 0..1000 {
        eec = rd(p, EEC);
        if eec & EE_GNT != 0 {
            break;
        }
        p.delay(5 * US);
    }
    if eec & EE_GNT == 0 {
        wr(p, EEC, eec & !EE_REQ);
        return false;
    }
    eec &= !(EE_CS | EE_SK);
    wr(p, EEC, eec);
    rd(p, STATUS);
    p.delay(US);
    true
}

/// ixgbe_ready_eeprom: RDSR until bit 0 (busy) reads 0, at most 5 ms.
fn ready(p: &SimPlatform) -> bool {
    for _ in (0..5000).step_by(5) {
        shift_out(p, 0x05, 8);
        if shift_in(p, 8) & 1 == 0 {
            return true;
        }
        p.delay(5 * US);
        standby(p);
    }
    false
}

/// ixgbe_release_eeprom (the 10 ms semaphore delay left out): CS high, SK low, EE_REQ off.
fn release(p: &SimPlatform) {
    let mut eec = rd(p, EEC);
    eec |= EE_CS;
    eec &= !EE_SK;
    wr(p, EEC, eec);
    rd(p, STATUS);
    p.delay(US);
    wr(p, EEC, eec & !EE_REQ);
}

/// ixgbe_read_eeprom_buffer_bit_bang with EEC.EE_ADDR_SIZE (bit 10) read as 16 address bits.
fn bit_bang_read(p: &SimPlatform, offset: u16, words: u16) -> Option<Vec<u16>> {
    let addr_bits = if rd(p, EEC) & (1 << 10) != 0 { 16 } else { 8 };
    assert_eq!(addr_bits, 16, "EEC bit 10 reads 1: 16-bit EEPROM addresses");
    if !acquire(p) {
        return None;
    }
    if !ready(p) {
        release(p);
        return None;
    }
    let mut out = Vec::new();
    for i in 0..words {
        standby(p);
        shift_out(p, 0x03, 8);
        shift_out(p, (offset + i) * 2, addr_bits);
        let w = shift_in(p, 16);
        out.push(w.rotate_left(8));
    }
    release(p);
    Some(out)
}

#[test]
fn eeprom_reads_through_the_spi_pins_match_eerd() {
    let (sim, nic, p) = one_nic();
    let image = sim.eeprom(nic);
    // Word 0, as DPDK's checksum validation reads it first; then a run across the checksum
    // word and a pointed-to section, word by word (one READ command each) and in one burst.
    assert_eq!(bit_bang_read(&p, 0, 1), Some(vec![image[0]]));
    // (Under Miri, where each bit costs seconds, two words of the run.)
    let run: Vec<u16> = (0x3C..if cfg!(miri) { 0x3E } else { 0x44 }).collect();
    let one_by_one: Vec<u16> = run
        .iter()
        .map(|&w| bit_bang_read(&p, w, 1).expect("granted")[0])
        .collect();
    assert_eq!(one_by_one, image[0x3C..0x3C + run.len()].to_vec());
    assert_eq!(
        bit_bang_read(&p, 0x60, 4),
        Some(image[0x60..0x64].to_vec()),
        "LAN core 0 section with the MAC"
    );
    assert_eq!(
        rd(&p, EEC) & (EE_GNT | EE_REQ),
        0,
        "released: no request, no grant"
    );
    assert_no_violations(&sim);
}

#[test]
fn no_grant_while_the_auto_read_runs() {
    let (sim, _nic, p) = one_nic();
    wr(&p, CTRL, 1 << 26);
    p.delay(Duration::from_micros(20));
    assert_eq!(rd(&p, EEC) & (1 << 9), 0, "auto-read still running");
    wr(&p, EEC, rd(&p, EEC) | EE_REQ);
    assert_eq!(rd(&p, EEC) & EE_GNT, 0, "the hardware is using the EEPROM");
    p.delay(Duration::from_millis(5));
    assert_ne!(rd(&p, EEC) & EE_GNT, 0, "granted once Auto_RD is set");
    wr(&p, EEC, rd(&p, EEC) & !EE_REQ);
    assert_eq!(rd(&p, EEC) & EE_GNT, 0);
    assert_no_violations(&sim);
}

#[test]
fn pins_without_the_grant_reach_no_eeprom() {
    let (_sim, _nic, p) = one_nic();
    // CS low and a READ of word 0 clocked without EE_REQ: DO never toggles.
    wr(&p, EEC, rd(&p, EEC) & !(EE_CS | EE_SK | EE_REQ));
    shift_out(&p, 0x03, 8);
    shift_out(&p, 0, 16);
    assert_eq!(shift_in(&p, 16), 0);
}
