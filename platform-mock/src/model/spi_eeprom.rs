//! The NVM's 4-wire SPI interface as software drives it through EEC (§8.2.3.2.1): after
//! EE_REQ (bit 6) the device grants the pins (EE_GNT, bit 7) unless its own auto-read is using
//! the EEPROM, and software clocks the serial EEPROM itself with EE_CS (bit 1, active low),
//! EE_SK (bit 0) and EE_DI (bit 2), reading EE_DO (bit 3).
//!
//! The part behaves as a standard SPI serial EEPROM in mode 0 with 16-bit byte addresses (EEC
//! bit 10 reads 1; Intel's shared code takes it as EE_ADDR_SIZE = 16 bits): input bits are
//! latched on the rising edge of SK, output bits change after the falling edge. READ (03h)
//! plus an address streams bytes from that address on (little-endian words: byte 2w is the
//! low byte of word w); RDSR (05h) streams the status register, 00h (ready, not
//! write-enabled). Writes are not modelled: any other opcode is ignored until CS rises.
//! DPDK's ixgbe PMD reads its first word (word 0) this way, before EERD.

/// SPI READ opcode.
const OP_READ: u32 = 0x03;
/// SPI read-status-register opcode.
const OP_RDSR: u32 = 0x05;
/// Address bits after READ.
const ADDR_BITS: u8 = 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// CS high: the part ignores SK and DI.
    #[default]
    Deselected,
    Opcode,
    Address,
    /// Streaming bytes of the image from the address.
    Read,
    /// Streaming the status register.
    Status,
    /// An opcode the model does not implement: nothing until CS rises.
    Ignore,
}

/// The serial EEPROM's side of the pins.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpiEeprom {
    phase: Phase,
    sk: bool,
    shift: u32,
    bits: u8,
    /// Byte address of the byte being shifted out.
    addr: usize,
    /// Bit of that byte on DO (0 = MSB); `None` until the first falling edge of the output.
    out_bit: Option<u8>,
}

impl SpiEeprom {
    /// The pins as software just drove them: `cs` is the EE_CS bit (1 = deselected).
    pub(crate) fn drive(&mut self, cs: bool, sk: bool, di: bool, image_bytes: usize) {
        if cs {
            *self = SpiEeprom {
                sk,
                ..SpiEeprom::default()
            };
            return;
        }
        if self.phase == Phase::Deselected {
            self.phase = Phase::Opcode;
            self.shift = 0;
            self.bits = 0;
        }
        let rising = sk && !self.sk;
        let falling = !sk && self.sk;
        self.sk = sk;
        if rising {
            self.rising(di, image_bytes);
        } else if falling && matches!(self.phase, Phase::Read | Phase::Status) {
            match self.out_bit {
                None => self.out_bit = Some(0),
                Some(7) => {
                    self.out_bit = Some(0);
                    if self.phase == Phase::Read {
                        self.addr = (self.addr + 1) % image_bytes.max(1);
                    }
                }
                Some(b) => self.out_bit = Some(b + 1),
            }
        }
    }

    fn rising(&mut self, di: bool, image_bytes: usize) {
        if !matches!(self.phase, Phase::Opcode | Phase::Address) {
            return;
        }
        self.shift = (self.shift << 1) | u32::from(di);
        self.bits += 1;
        match self.phase {
            Phase::Opcode if self.bits == 8 => {
                self.phase = match self.shift {
                    OP_READ => Phase::Address,
                    OP_RDSR => Phase::Status,
                    _ => Phase::Ignore,
                };
                self.shift = 0;
                self.bits = 0;
                self.out_bit = None;
            }
            Phase::Address if self.bits == ADDR_BITS => {
                self.addr = self.shift as usize % image_bytes.max(1);
                self.phase = Phase::Read;
                self.out_bit = None;
            }
            _ => {}
        }
    }

    /// The level on DO: the current output bit, 0 when the part drives nothing.
    pub(crate) fn data_out(&self, image: &[u16]) -> bool {
        let Some(bit) = self.out_bit else {
            return false;
        };
        match self.phase {
            Phase::Read => {
                let word = image.get(self.addr / 2).copied().unwrap_or(0xFFFF);
                let byte = word.to_le_bytes()[self.addr % 2];
                byte & (0x80 >> bit) != 0
            }
            // Status 00h: not busy, writes not enabled.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clocks `count` bits of `v` out MSB first, as Intel's shift-out routine does.
    fn send(s: &mut SpiEeprom, v: u32, count: u8, bytes: usize) {
        for k in (0..count).rev() {
            let di = (v >> k) & 1 != 0;
            s.drive(false, false, di, bytes);
            s.drive(false, true, di, bytes);
            s.drive(false, false, di, bytes);
        }
    }

    /// Reads `count` bits: raise SK, sample DO, lower SK.
    fn recv(s: &mut SpiEeprom, count: u8, image: &[u16]) -> u32 {
        let mut v = 0;
        for _ in 0..count {
            s.drive(false, true, false, image.len() * 2);
            v = (v << 1) | u32::from(s.data_out(image));
            s.drive(false, false, false, image.len() * 2);
        }
        v
    }

    #[test]
    fn read_streams_little_endian_words_from_the_byte_address() {
        let image = [0x1234u16, 0xABCD, 0x5A0F];
        let bytes = image.len() * 2;
        let mut s = SpiEeprom::default();
        s.drive(false, false, false, bytes);
        send(&mut s, OP_READ, 8, bytes);
        send(&mut s, 2, 16, bytes);
        assert_eq!(recv(&mut s, 16, &image), 0xCDAB, "word 1, low byte first");
        assert_eq!(recv(&mut s, 8, &image), 0x0F, "then word 2's low byte");
        // CS high ends the command; the next one starts afresh.
        s.drive(true, false, false, bytes);
        s.drive(false, false, false, bytes);
        send(&mut s, OP_RDSR, 8, bytes);
        assert_eq!(recv(&mut s, 8, &image), 0, "status: ready");
        s.drive(true, false, false, bytes);
        s.drive(false, false, false, bytes);
        send(&mut s, 0x02, 8, bytes);
        assert_eq!(recv(&mut s, 8, &image), 0, "WRITE is ignored");
    }
}
