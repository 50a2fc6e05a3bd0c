//! The SFP+ cage: a module's identification EEPROM on the I2C bus that the 82599 bit-bangs
//! through I2CCTL (§8.2.3.1.5: bit 0 I2C_CLK_IN, 1 I2C_CLK_OUT, 2 I2C_DATA_IN, 3 I2C_DATA_OUT).
//!
//! Both lines are open drain: SCL and SDA read high unless the 82599 (CLK_OUT / DATA_OUT = 0)
//! or the module pulls them low. The module is an I2C slave at 0xA0 (SFF-8472 "A0h" page:
//! SFF-8079 serial ID) that answers random reads (address, offset, repeated START, address |
//! 1, data…, NACK, STOP) as Linux's `ixgbe_read_i2c_byte_generic_int` issues them, and
//! sequential reads. Writes to it are acknowledged and ignored (the ID page is read-only).
//! No clock stretching. Diagnostics (A2h) are not implemented: byte 92 says so, and Linux does
//! not read them.

/// Which module sits in the cage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SfpModule {
    /// A passive direct-attach copper cable (SFF-8431 appendix E), 3 m; Linux identifies it as
    /// `ixgbe_sfp_type_da_cu_core0` / `_core1`.
    #[default]
    DirectAttachCopper,
    /// A 10GBASE-SR optical transceiver (850 nm, LC) under Intel's OUI, as Intel ships with
    /// X520-SR boards; Linux identifies it as `ixgbe_sfp_type_srlr_core0` / `_core1`. Its
    /// laser follows TX_DISABLE (SFF-8431 §2.4.3: pulled up inside the module, so the laser is
    /// off unless the host drives the line low), which SFP+ boards wire to ESDP.SDP3.
    SrOptical,
    /// An empty cage (no device answers on I2C; ESDP.SDP2 reads 0).
    None,
}

impl SfpModule {
    /// The module transmits light only while TX_DISABLE is deasserted (optics); a passive
    /// copper cable has no transmitter of its own and ignores the line.
    pub fn has_laser(self) -> bool {
        matches!(self, SfpModule::SrOptical)
    }
}

/// The 256-byte A0h page of a passive DA cable (SFF-8472 Table 4-1), with both check codes.
pub fn da_copper_id(serial: &[u8; 16]) -> [u8; 256] {
    let mut b = [0u8; 256];
    b[0] = 0x03; // identifier: SFP/SFP+
    b[1] = 0x04; // extended identifier: serial ID via 2-wire
    b[2] = 0x21; // connector: copper pigtail
                 // Bytes 3..=10: compliance codes. A passive cable sets no optical 10G code; byte 8 bit 2
                 // is "passive cable" (SFF-8472 Table 5-3), which Linux tests (IXGBE_SFF_DA_PASSIVE_CABLE).
    b[8] = 0x04;
    b[11] = 0x00; // encoding: unspecified
    b[12] = 0x67; // nominal rate 10.3 Gb/s in 100 Mb/s units
    b[18] = 3; // length (copper): 3 m
    b[20..36].copy_from_slice(b"PLATFORM-MOCK   "); // vendor name
                                                    // 37..=39 vendor OUI: all zero means "unspecified" (SFF-8472); Linux then calls it
                                                    // ixgbe_phy_sfp_passive_unknown and accepts it ("Allow any DA cable vendor").
    b[40..56].copy_from_slice(b"SIM-DAC-3M      "); // vendor part number
    b[56..60].copy_from_slice(b"A   "); // revision
    b[60] = 0x01; // passive cable: compliant with SFF-8431 appendix E
    b[63] = cc(&b[0..63]);
    b[68..84].copy_from_slice(serial); // vendor serial number
    b[84..92].copy_from_slice(b"261201  "); // date code YYMMDD + lot
    b[92] = 0x00; // no digital diagnostics
    b[94] = 0x00; // SFF-8472 compliance: not included (A2h absent)
    b[95] = cc(&b[64..95]);
    b
}

/// The 256-byte A0h page of a 10GBASE-SR module (SFF-8472 Table 4-1), with both check codes.
pub fn sr_optical_id(serial: &[u8; 16]) -> [u8; 256] {
    let mut b = [0u8; 256];
    b[0] = 0x03; // identifier: SFP/SFP+
    b[1] = 0x04; // extended identifier: serial ID via 2-wire
    b[2] = 0x07; // connector: LC
    b[3] = 0x10; // 10G Ethernet compliance: 10GBASE-SR (Linux: IXGBE_SFF_10GBASESR_CAPABLE)
    b[11] = 0x06; // encoding: 64B/66B
    b[12] = 0x67; // nominal rate 10.3 Gb/s in 100 Mb/s units
    b[16] = 8; // OM2 50 µm: 80 m in 10 m units
    b[17] = 3; // OM1 62.5 µm: 30 m in 10 m units
    b[20..36].copy_from_slice(b"Intel Corp      "); // vendor name
    b[37..40].copy_from_slice(&[0x00, 0x1B, 0x21]); // vendor OUI: Intel (IXGBE_SFF_VENDOR_OUI_INTEL)
    b[40..56].copy_from_slice(b"SIM-SR-850      "); // vendor part number
    b[56..60].copy_from_slice(b"A   "); // revision
    b[60..62].copy_from_slice(&850u16.to_be_bytes()); // laser wavelength, nm
    b[63] = cc(&b[0..63]);
    b[65] = 0x1A; // options: TX_DISABLE implemented (bit 4), TX_FAULT (bit 3), LOS (bit 1)
    b[68..84].copy_from_slice(serial); // vendor serial number
    b[84..92].copy_from_slice(b"261201  "); // date code YYMMDD + lot
    b[92] = 0x00; // no digital diagnostics
    b[94] = 0x00; // SFF-8472 compliance: not included (A2h absent)
    b[95] = cc(&b[64..95]);
    b
}

/// Low 8 bits of the sum (CC_BASE / CC_EXT).
fn cc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &x| a.wrapping_add(x))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for START.
    Idle,
    /// Receiving a byte from the master (address or data); `addr` says which.
    Receive { addr: bool },
    /// Driving our ACK for one clock; `read` tells what follows.
    Ack { read: bool },
    /// Sending a data byte, bit by bit (MSB first).
    Send,
    /// Sampling the master's ACK / NACK after a sent byte.
    MasterAck,
}

/// An I2C slave answering at 0xA0 with an ID page, driven by line levels.
pub(crate) struct I2cBus {
    page: Option<Box<[u8; 256]>>,
    scl: bool,
    sda: bool,
    state: State,
    shift: u8,
    bits: u8,
    /// First data byte of a write sets the offset.
    have_offset: bool,
    offset: u8,
    /// What the slave drives on SDA: false = pulls low.
    out: bool,
    master_acked: bool,
}

impl I2cBus {
    pub fn new(module: SfpModule, serial: &[u8; 16]) -> Self {
        I2cBus {
            page: match module {
                SfpModule::DirectAttachCopper => Some(Box::new(da_copper_id(serial))),
                SfpModule::SrOptical => Some(Box::new(sr_optical_id(serial))),
                SfpModule::None => None,
            },
            scl: true,
            sda: true,
            state: State::Idle,
            shift: 0,
            bits: 0,
            have_offset: false,
            offset: 0,
            out: true,
            master_acked: false,
        }
    }

    /// A module is plugged in.
    pub fn present(&self) -> bool {
        self.page.is_some()
    }

    /// The SDA level on the bus given the master's output.
    pub fn sda_line(&self, master: bool) -> bool {
        master && self.out
    }

    /// The master drives SCL = `scl`, SDA = `sda_master` (both true = released).
    pub fn drive(&mut self, scl: bool, sda_master: bool) {
        let sda = self.sda_line(sda_master);
        if self.page.is_none() {
            self.scl = scl;
            self.sda = sda;
            return;
        }
        let (old_scl, old_sda) = (self.scl, self.sda);
        self.scl = scl;
        self.sda = sda;
        if old_scl && scl && old_sda != sda {
            if !sda {
                // START (or repeated START): SDA falls while SCL is high.
                self.state = State::Receive { addr: true };
                self.shift = 0;
                self.bits = 0;
                self.out = true;
            } else {
                // STOP.
                self.state = State::Idle;
                self.out = true;
            }
            return;
        }
        if !old_scl && scl {
            self.rising(sda);
        } else if old_scl && !scl {
            self.falling();
        }
    }

    fn rising(&mut self, sda: bool) {
        match self.state {
            State::Receive { .. } => {
                self.shift = (self.shift << 1) | u8::from(sda);
                self.bits += 1;
            }
            State::MasterAck => self.master_acked = !sda,
            _ => {}
        }
    }

    fn falling(&mut self) {
        match self.state {
            State::Receive { addr } if self.bits == 8 => {
                let byte = self.shift;
                if addr {
                    if byte >> 1 == 0x50 {
                        self.out = false; // ACK our address
                        self.have_offset = false;
                        self.state = State::Ack {
                            read: byte & 1 != 0,
                        };
                    } else {
                        self.state = State::Idle; // not ours: no ACK, ignore until START
                    }
                } else {
                    if !self.have_offset {
                        self.offset = byte;
                        self.have_offset = true;
                    }
                    self.out = false;
                    self.state = State::Ack { read: false };
                }
            }
            State::Ack { read } => {
                if read {
                    self.state = State::Send;
                    self.load();
                } else {
                    self.out = true;
                    self.state = State::Receive { addr: false };
                    self.shift = 0;
                    self.bits = 0;
                }
            }
            State::Send => {
                self.bits += 1;
                if self.bits == 8 {
                    self.out = true; // release for the master's ACK
                    self.state = State::MasterAck;
                } else {
                    self.out = self.shift & (0x80 >> self.bits) != 0;
                }
            }
            State::MasterAck => {
                if self.master_acked {
                    self.state = State::Send;
                    self.load();
                } else {
                    self.out = true;
                    self.state = State::Idle; // NACK: wait for STOP / START
                }
            }
            _ => {}
        }
    }

    /// Loads the byte at the offset and drives its MSB.
    fn load(&mut self) {
        let b = self
            .page
            .as_ref()
            .map_or(0xFF, |p| p[usize::from(self.offset)]);
        self.offset = self.offset.wrapping_add(1);
        self.shift = b;
        self.bits = 0;
        self.out = b & 0x80 != 0;
    }
}
