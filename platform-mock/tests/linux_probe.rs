//! What Linux's ixgbe probe reads, done the way its code does it: the EEPROM through EERD
//! (ixgbe_read_eerd_buffer_generic, ixgbe_calc_eeprom_checksum_generic, PBA string, SFP init
//! sequence, firmware version), the MAC from RAL0/RAH0, and the SFP+ module's ID bytes
//! bit-banged through I2CCTL as ixgbe_phy.c does.

mod common;

use std::time::Duration;

use common::*;
use ixgbe_core::Platform;
use platform_mock::{NicConfig, SfpModule, Sim, SimPlatform};

const EERD: u32 = 0x10014;
const I2CCTL: u32 = 0x00028;
const ESDP: u32 = 0x00020;
const FWSM: u32 = 0x10148;
const CORECTL: u32 = 0x014F00;
const AUTOC: u32 = 0x042A0;
const ANLP1: u32 = 0x042B0;
const MSCA: u32 = 0x0425C;
const MSRWD: u32 = 0x04260;

/// ixgbe_read_eerd_buffer_generic for one word (with ixgbe_poll_eerd_eewr_done).
fn eerd(p: &SimPlatform, word: u16) -> Option<u16> {
    wr(p, EERD, (u32::from(word) << 2) | 1);
    for _ in 0..100_000 {
        let v = rd(p, EERD);
        if v & 2 != 0 {
            return Some((v >> 16) as u16);
        }
        p.delay(Duration::from_micros(5));
    }
    None
}

/// ixgbe_calc_eeprom_checksum_generic.
fn linux_checksum(p: &SimPlatform) -> u16 {
    let mut sum = 0u16;
    for i in 0..0x3F {
        sum = sum.wrapping_add(eerd(p, i).expect("read"));
    }
    for i in 0x03..0x0F {
        let ptr = eerd(p, i).expect("read");
        if ptr == 0xFFFF || ptr == 0 {
            continue;
        }
        let len = eerd(p, ptr).expect("read");
        if len == 0xFFFF || len == 0 {
            continue;
        }
        for j in ptr + 1..=ptr + len {
            sum = sum.wrapping_add(eerd(p, j).expect("read"));
        }
    }
    0xBABAu16.wrapping_sub(sum)
}

#[test]
fn eeprom_reads_and_checksum_as_linux_computes_it() {
    let (sim, nic, p) = one_nic();
    let eec = rd(&p, EEC);
    assert_ne!(eec & (1 << 8), 0, "EE_PRES");
    assert_ne!(eec & (1 << 9), 0, "Auto_RD");
    // ixgbe_init_eeprom_params_generic: word_size = 1 << (EE_Size + 6).
    let words = 1u32 << (((eec >> 11) & 0xF) + 6);
    assert_eq!(words, 1024);
    // DONE is not there at once: the read takes a moment.
    wr(&p, EERD, 1);
    assert_eq!(rd(&p, EERD) & 2, 0, "DONE only after a short time");
    assert_ne!(rd(&p, EERD) & 2, 0);
    // Or once the read time has passed.
    wr(&p, EERD, 0x3F << 2 | 1);
    p.delay(Duration::from_micros(2));
    let v = rd(&p, EERD);
    assert_ne!(v & 2, 0);
    assert_eq!((v >> 16) as u16, sim.eeprom(nic)[0x3F]);
    assert_eq!(eerd(&p, 0x00), Some(0x0040));
    // ixgbe_validate_eeprom_checksum_generic.
    assert_eq!(linux_checksum(&p), eerd(&p, 0x3F).expect("read"));
    assert_ne!(rd(&p, FWSM) & (1 << 15), 0, "FWSM.FW_Val_bit");
    assert_eq!(rd(&p, FWSM) & (0x3F << 19), 0, "no Ext_err_ind");
}

#[test]
fn mac_from_rar0_matches_the_eeprom_lan_core_section() {
    let (_sim, _nic, p) = one_nic();
    // ixgbe_get_mac_addr_generic: RAL(0)/RAH(0), 0x05400/0x05404.
    let ral = rd(&p, 0x05400).to_le_bytes();
    let rah = rd(&p, 0x05404).to_le_bytes();
    let mac = [ral[0], ral[1], ral[2], ral[3], rah[0], rah[1]];
    assert_eq!(mac, MAC);
    let lan = eerd(&p, 0x09).expect("LAN core 0 pointer");
    let w: Vec<u8> = (1..=3)
        .flat_map(|k| eerd(&p, lan + k).expect("read").to_le_bytes())
        .collect();
    assert_eq!(w, MAC);
}

#[test]
fn pba_string_and_firmware_version() {
    let (_sim, _nic, p) = one_nic();
    // ixgbe_read_pba_string_generic, string format.
    assert_eq!(eerd(&p, 0x15), Some(0xFAFA));
    let ptr = eerd(&p, 0x16).expect("read");
    let len = eerd(&p, ptr).expect("read");
    let mut s = Vec::new();
    for k in 1..len {
        s.extend(eerd(&p, ptr + k).expect("read").to_be_bytes());
    }
    assert_eq!(String::from_utf8(s).expect("ascii"), "SIM520-001");
    // ixgbe_verify_fw_version_82599: version word > 5; LESM state bit 15 clear.
    let fw = eerd(&p, 0x0F).expect("read");
    assert!(fw != 0 && fw != 0xFFFF);
    let ptp = eerd(&p, fw + 4).expect("read");
    assert!(eerd(&p, ptp + 7).expect("read") > 5);
    let lesm = eerd(&p, fw + 2).expect("read");
    assert_eq!(eerd(&p, lesm + 1).expect("read") & 0x8000, 0);
    // ixgbe_get_device_caps: crosstalk fix applies, so ESDP.SDP2 must show the module.
    assert_eq!(eerd(&p, 0x2C).expect("read") & (1 << 7), 0);
    assert_ne!(rd(&p, ESDP) & (1 << 2), 0, "SDP2: SFP+ cage full");
}

#[test]
fn sfp_init_sequence_for_da_cable_and_pipeline_reset() {
    let (sim, _nic, p) = one_nic();
    // ixgbe_get_sfp_init_sequence_offsets for ixgbe_sfp_type_da_cu_core0 (3).
    let mut list = eerd(&p, 0x2B).expect("read");
    assert!(list != 0 && list != 0xFFFF);
    list += 1;
    let mut id = eerd(&p, list).expect("read");
    let mut data = None;
    while id != 0xFFFF {
        if id == 3 {
            data = Some(eerd(&p, list + 1).expect("read"));
            break;
        }
        list += 2;
        id = eerd(&p, list).expect("read");
    }
    let mut off = data.expect("a sequence for da_cu_core0");
    assert!(off != 0 && off != 0xFFFF);
    // ixgbe_setup_sfp_modules_82599: write the words to CORECTL until 0xFFFF.
    let mut n = 0;
    loop {
        off += 1;
        let v = eerd(&p, off).expect("read");
        if v == 0xFFFF {
            break;
        }
        wr(&p, CORECTL, u32::from(v));
        n += 1;
        assert!(n < 64, "unterminated sequence");
    }
    assert!(n > 0);
    // ixgbe_reset_pipeline_82599: toggle LMS with Restart_AN, wait for AN to leave state 0.
    let autoc = rd(&p, AUTOC) | (1 << 12);
    wr(&p, AUTOC, autoc ^ (0x4 << 13));
    assert_ne!(rd(&p, ANLP1) & (0xF << 16), 0, "AN state left idle");
    wr(&p, AUTOC, autoc);
    p.delay(Duration::from_millis(30));
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0);
    assert_no_violations(&sim);
}

#[test]
fn mdio_probe_finds_no_phy_quickly() {
    let (sim, _nic, p) = one_nic();
    // ixgbe_read_phy_reg_mdi: the address cycle completes, the read returns 0xFFFF.
    wr(&p, MSCA, (1 << 30) | (1 << 16));
    assert_eq!(rd(&p, MSCA) & (1 << 30), 0);
    wr(&p, MSCA, (1 << 30) | (0b11 << 26) | (1 << 16));
    assert_eq!(rd(&p, MSCA) & (1 << 30), 0);
    assert_eq!(rd(&p, MSRWD) >> 16, 0xFFFF);
    assert_no_violations(&sim);
}

// ----- I2C bit-banging exactly as ixgbe_phy.c does it (82599: no OE / BB_EN bits) -----

const CLK_IN: u32 = 1;
const CLK_OUT: u32 = 1 << 1;
const DATA_IN: u32 = 1 << 2;
const DATA_OUT: u32 = 1 << 3;

struct Bus<'a>(&'a SimPlatform);

impl Bus<'_> {
    fn read(&self) -> u32 {
        rd(self.0, I2CCTL)
    }
    fn write(&self, v: u32) {
        wr(self.0, I2CCTL, v);
        let _ = rd(self.0, STATUS); // IXGBE_WRITE_FLUSH
    }
    fn udelay(&self, us: u64) {
        self.0.delay(Duration::from_micros(us));
    }
    fn raise_clk(&self, i2cctl: &mut u32) {
        for _ in 0..500 {
            *i2cctl |= CLK_OUT;
            self.write(*i2cctl);
            self.udelay(1);
            if self.read() & CLK_IN != 0 {
                break;
            }
        }
    }
    fn lower_clk(&self, i2cctl: &mut u32) {
        *i2cctl &= !CLK_OUT;
        self.write(*i2cctl);
        self.udelay(1);
    }
    fn set_data(&self, i2cctl: &mut u32, data: bool) -> Result<(), ()> {
        if data {
            *i2cctl |= DATA_OUT;
        } else {
            *i2cctl &= !DATA_OUT;
        }
        self.write(*i2cctl);
        self.udelay(2);
        if !data {
            return Ok(());
        }
        *i2cctl = self.read();
        if (*i2cctl & DATA_IN != 0) != data {
            return Err(()); // "Error - I2C data was not set"
        }
        Ok(())
    }
    fn get_data(i2cctl: u32) -> bool {
        i2cctl & DATA_IN != 0
    }
    fn start(&self) {
        let mut c = self.read();
        self.set_data(&mut c, true).expect("data high");
        self.raise_clk(&mut c);
        self.udelay(5);
        self.set_data(&mut c, false).expect("data low");
        self.udelay(4);
        self.lower_clk(&mut c);
        self.udelay(5);
    }
    fn stop(&self) {
        let mut c = self.read();
        self.set_data(&mut c, false).expect("data low");
        self.raise_clk(&mut c);
        self.udelay(4);
        self.set_data(&mut c, true).expect("data high");
        self.udelay(5);
    }
    fn clock_out_bit(&self, data: bool) -> Result<(), ()> {
        let mut c = self.read();
        self.set_data(&mut c, data)?;
        self.raise_clk(&mut c);
        self.udelay(4);
        self.lower_clk(&mut c);
        self.udelay(5);
        Ok(())
    }
    fn clock_in_bit(&self) -> bool {
        let mut c = self.read();
        self.raise_clk(&mut c);
        self.udelay(4);
        c = self.read();
        let d = Self::get_data(c);
        self.lower_clk(&mut c);
        self.udelay(5);
        d
    }
    fn clock_out_byte(&self, data: u8) -> Result<(), ()> {
        for i in (0..8).rev() {
            self.clock_out_bit(data >> i & 1 != 0)?;
        }
        // Release SDA.
        let c = self.read() | DATA_OUT;
        self.write(c);
        Ok(())
    }
    fn clock_in_byte(&self) -> u8 {
        let mut d = 0;
        for i in (0..8).rev() {
            d |= u8::from(self.clock_in_bit()) << i;
        }
        d
    }
    fn get_ack(&self) -> Result<(), ()> {
        let mut c = self.read();
        self.raise_clk(&mut c);
        self.udelay(4);
        let mut ack = true;
        for _ in 0..10 {
            c = self.read();
            ack = Self::get_data(c);
            self.udelay(1);
            if !ack {
                break;
            }
        }
        self.lower_clk(&mut c);
        self.udelay(5);
        if ack {
            Err(())
        } else {
            Ok(())
        }
    }
    /// ixgbe_read_i2c_byte_generic_int (one attempt).
    fn read_byte(&self, offset: u8, dev: u8) -> Result<u8, ()> {
        let r = (|| {
            self.start();
            self.clock_out_byte(dev)?;
            self.get_ack()?;
            self.clock_out_byte(offset)?;
            self.get_ack()?;
            self.start();
            self.clock_out_byte(dev | 1)?;
            self.get_ack()?;
            let d = self.clock_in_byte();
            self.clock_out_bit(true)?; // NACK
            self.stop();
            Ok(d)
        })();
        if r.is_err() {
            self.bus_clear();
        }
        r
    }
    /// ixgbe_i2c_bus_clear.
    fn bus_clear(&self) {
        self.start();
        let mut c = self.read();
        self.set_data(&mut c, true).expect("data high");
        for _ in 0..9 {
            self.raise_clk(&mut c);
            self.udelay(4);
            self.lower_clk(&mut c);
            self.udelay(5);
        }
        self.start();
        self.stop();
    }
}

/// The sfp_type ixgbe_identify_sfp_module_generic derives for LAN 0 (3 = da_cu_core0).
fn identify(p: &SimPlatform) -> Result<u16, ()> {
    let b = Bus(p);
    let id = b.read_byte(0x00, 0xA0)?;
    if id != 0x03 {
        return Ok(0xFFFF);
    }
    let comp10g = b.read_byte(0x03, 0xA0)?;
    let _comp1g = b.read_byte(0x06, 0xA0)?;
    let cable = b.read_byte(0x08, 0xA0)?;
    let lan_id = (rd(p, STATUS) >> 2) & 3;
    Ok(if cable & 0x4 != 0 {
        3 + lan_id as u16
    } else if comp10g & 0x30 != 0 {
        5 + lan_id as u16
    } else {
        0xFFFF
    })
}

#[test]
#[cfg_attr(
    miri,
    ignore = "slow under Miri (1-2 min): bit-banged I2C, each access advancing the model"
)]
fn sfp_module_identifies_as_passive_da_core0() {
    let (sim, _nic, p) = one_nic();
    assert_eq!(identify(&p), Ok(3), "ixgbe_sfp_type_da_cu_core0");
    let b = Bus(&p);
    let oui: Vec<u8> = (37..40)
        .map(|o| b.read_byte(o, 0xA0).expect("oui"))
        .collect();
    assert_eq!(
        oui,
        [0, 0, 0],
        "unspecified OUI: ixgbe_phy_sfp_passive_unknown"
    );
    // Nobody answers at other addresses.
    assert_eq!(b.read_byte(0, 0xA4), Err(()));
    // And the bus still works afterwards.
    assert_eq!(b.read_byte(0x00, 0xA0), Ok(0x03));
    assert_no_violations(&sim);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: ~25 000 bit-banged I2CCTL accesses")]
fn sfp_id_page_check_codes() {
    let (_sim, _nic, p) = one_nic();
    let b = Bus(&p);
    let page: Vec<u8> = (0..96)
        .map(|o| b.read_byte(o, 0xA0).expect("byte"))
        .collect();
    let cc = |r: std::ops::Range<usize>| page[r].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    assert_eq!(cc(0..63), page[63], "CC_BASE");
    assert_eq!(cc(64..95), page[95], "CC_EXT");
    assert_eq!(&page[20..36], b"PLATFORM-MOCK   ");
    assert_eq!(page[2], 0x21, "copper pigtail");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "slow under Miri (1-2 min): bit-banged I2C, each access advancing the model"
)]
fn second_port_identifies_as_core1() {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        lan_id: 1,
        ..NicConfig::default()
    });
    let p = sim.platform(nic);
    assert_eq!((rd(&p, STATUS) >> 2) & 3, 1, "STATUS.LAN_ID");
    assert_eq!(identify(&p), Ok(4), "ixgbe_sfp_type_da_cu_core1");
}

#[test]
fn empty_cage_does_not_answer() {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        module: SfpModule::None,
        ..NicConfig::default()
    });
    let p = sim.platform(nic);
    sim.advance(Duration::from_millis(25));
    assert_eq!(Bus(&p).read_byte(0x00, 0xA0), Err(()), "no ACK");
    assert_eq!(rd(&p, ESDP) & (1 << 2), 0, "SDP2: cage empty");
    // No module, no link (SFP+ boards link through the cage).
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "slow under Miri (1-2 min): bit-banged I2C, each access advancing the model"
)]
fn sr_module_identifies_as_srlr_under_intels_oui() {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::for_board(platform_mock::Board::X520Sr));
    let p = sim.platform(nic);
    assert_eq!(identify(&p), Ok(5), "ixgbe_sfp_type_srlr_core0");
    let b = Bus(&p);
    let oui: Vec<u8> = (37..40)
        .map(|o| b.read_byte(o, 0xA0).expect("oui"))
        .collect();
    // Linux refuses optical modules of other vendors unless allow_unsupported_sfp is set.
    assert_eq!(oui, [0x00, 0x1B, 0x21], "IXGBE_SFF_VENDOR_OUI_INTEL");
    assert_no_violations(&sim);
}

#[test]
fn i2c_lines_read_back_what_is_driven() {
    let (_sim, _nic, p) = one_nic();
    wr(&p, I2CCTL, 0);
    assert_eq!(rd(&p, I2CCTL) & (CLK_IN | DATA_IN), 0);
    wr(&p, I2CCTL, CLK_OUT | DATA_OUT);
    assert_eq!(rd(&p, I2CCTL), CLK_OUT | DATA_OUT | CLK_IN | DATA_IN);
}
