//! Typed 82599 registers: BAR0 offsets and bit fields (datasheet chapter 8, "Device Registers —
//! PF"; section numbers below are §8.2.3.x of document 331520).
//!
//! Each register is a [`Reg<R>`]: its byte offset plus the `tock-registers` field set `R` it
//! accepts, so `regs.modify(CTRL, CTRL::RST::SET)` type-checks and `regs.modify(CTRL,
//! FCTRL::UPE::SET)` does not. Access goes through the [`Platform`]: we never put references over
//! the BAR (references into MMIO are unsound).

use core::marker::PhantomData;

use tock_registers::fields::FieldValue;
use tock_registers::{LocalRegisterCopy, RegisterLongName};

use crate::platform::Platform;

/// A register at a byte offset in BAR0 whose fields are described by `R`.
pub struct Reg<R: RegisterLongName = ()> {
    offset: u32,
    fields: PhantomData<R>,
}

impl<R: RegisterLongName> Clone for Reg<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R: RegisterLongName> Copy for Reg<R> {}

impl<R: RegisterLongName> Reg<R> {
    /// A register at `offset`.
    pub const fn at(offset: u32) -> Self {
        Self {
            offset,
            fields: PhantomData,
        }
    }

    /// Its byte offset in BAR0.
    pub const fn offset(self) -> u32 {
        self.offset
    }
}

impl<R: RegisterLongName> core::fmt::Debug for Reg<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Reg({:#07x})", self.offset)
    }
}

/// The driver's only path to MMIO: reads, writes and read-modify-writes of typed registers.
#[derive(Clone)]
pub(crate) struct Regs<P: Platform> {
    platform: P,
}

impl<P: Platform> Regs<P> {
    pub(crate) fn new(platform: P) -> Self {
        Self { platform }
    }

    pub(crate) fn platform(&self) -> &P {
        &self.platform
    }

    #[inline(always)]
    pub(crate) fn read<R: RegisterLongName>(&self, reg: Reg<R>) -> u32 {
        self.platform.read32(reg.offset)
    }

    #[inline(always)]
    pub(crate) fn get<R: RegisterLongName>(&self, reg: Reg<R>) -> LocalRegisterCopy<u32, R> {
        LocalRegisterCopy::new(self.read(reg))
    }

    #[inline(always)]
    pub(crate) fn is_set<R: RegisterLongName>(
        &self,
        reg: Reg<R>,
        field: tock_registers::fields::Field<u32, R>,
    ) -> bool {
        self.get(reg).is_set(field)
    }

    #[inline(always)]
    pub(crate) fn write<R: RegisterLongName>(&self, reg: Reg<R>, value: u32) {
        // SAFETY: `Regs` is private to the driver, and the driver upholds the write32 contract at
        // every call site: the only values that make the device access host memory are ring base
        // addresses and buffer addresses of DMA regions owned by the queue that programs them,
        // tails that cover only descriptors pointing into such buffers, and queue enables after
        // both; queues are disabled (or their memory leaked) before that memory is freed.
        unsafe { self.platform.write32(reg.offset, value) }
    }

    #[inline(always)]
    pub(crate) fn write_fields<R: RegisterLongName>(&self, reg: Reg<R>, value: FieldValue<u32, R>) {
        self.write(reg, value.value);
    }

    /// Read-modify-write (DS §8.2.2: partial updates are read, modify, write of the 32 bits).
    #[inline(always)]
    pub(crate) fn modify<R: RegisterLongName>(&self, reg: Reg<R>, value: FieldValue<u32, R>) {
        let mut v = self.get(reg);
        v.modify(value);
        self.write(reg, v.get());
    }
}

/// Field definitions (`tock-registers`); each register's fields are documented inline.
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields![u32,
        /// Device Control, §8.2.3.1.1.
        pub CTRL [
            /// PCIe Master Disable: block new master requests.
            MASTER_DISABLE OFFSET(2) NUMBITS(1) [],
            /// Link reset (self-clearing).
            LRST OFFSET(3) NUMBITS(1) [],
            /// Software (global) reset (self-clearing).
            RST OFFSET(26) NUMBITS(1) []
        ],
        /// Device Status, §8.2.3.1.2.
        pub STATUS [
            /// LAN ID: which PCI function this is.
            LAN_ID OFFSET(2) NUMBITS(2) [],
            /// PCIe Master Enable Status: 0 once no master requests are pending.
            MASTER_ENABLE_STATUS OFFSET(19) NUMBITS(1) []
        ],
        /// Extended Device Control, §8.2.3.1.3.
        pub CTRL_EXT [
            /// No-snoop disable.
            NS_DIS OFFSET(16) NUMBITS(1) [],
            /// Driver loaded (tells firmware a driver owns the port).
            DRV_LOAD OFFSET(28) NUMBITS(1) []
        ],
        /// Extended SDP Control, §8.2.3.1.4 (not reset by CTRL.RST).
        pub ESDP [
            /// SDP3 data: on SFP+ boards the module's TX_DISABLE (1 = laser off).
            SDP3 OFFSET(3) NUMBITS(1) [],
            /// SDP3 direction: 1 = output.
            SDP3_IODIR OFFSET(11) NUMBITS(1) []
        ],
        /// Software Semaphore, §8.2.3.4.9 (shared by both ports).
        pub SWSM [
            /// Set by reading; the reader that saw 0 owns it until it writes 0.
            SMBI OFFSET(0) NUMBITS(1) [],
            /// Software's hold on SW_FW_SYNC; reads back 1 only if firmware does not hold it.
            SWESMBI OFFSET(1) NUMBITS(1) []
        ],
        /// Firmware Semaphore, §8.2.3.4.10 (written by firmware).
        pub FWSM [
            /// Manageability mode (0 = none).
            FW_MODE OFFSET(1) NUMBITS(3) [],
            /// External error indication (0 = no error, 0x01 = bad NVM checksum).
            EXT_ERR_IND OFFSET(19) NUMBITS(6) []
        ],
        /// Software-Firmware Synchronisation, §8.2.3.4.11: bits 4:0 software's, 9:5 firmware's.
        pub SW_FW_SYNC [
            /// Software holds the MAC CSRs (AUTOC and friends).
            SW_MAC_CSR OFFSET(3) NUMBITS(1) [],
            /// Firmware holds the MAC CSRs.
            FW_MAC_CSR OFFSET(8) NUMBITS(1) []
        ],
        /// MAC Manageability Control (MMNGC), among the MAC registers of §8.2.3.22.
        pub MMNGC [
            /// Manageability forbids link resets and link-mode changes.
            MNG_VETO OFFSET(0) NUMBITS(1) []
        ],
        /// EEPROM/Flash Control, §8.2.3.2.1.
        pub EEC [
            /// EEPROM present with a valid signature.
            EE_PRES OFFSET(8) NUMBITS(1) [],
            /// EEPROM auto-read done.
            AUTO_RD OFFSET(9) NUMBITS(1) []
        ],
        /// Receive DMA Control, §8.2.3.8.8.
        pub RDRXCTL [
            /// Strip the Ethernet CRC (must equal HLREG0.RXCRCSTRP).
            CRC_STRIP OFFSET(1) NUMBITS(1) [],
            /// DMA init cycle done.
            DMAIDONE OFFSET(3) NUMBITS(1) [],
            /// RSC first size: reserved, software sets 0.
            RSCFRSTSIZE OFFSET(17) NUMBITS(5) [],
            /// RSC ACK control: software sets 1.
            RSCACKC OFFSET(25) NUMBITS(1) [],
            /// FCoE write fix: software sets 1.
            FCOE_WRFIX OFFSET(26) NUMBITS(1) []
        ],
        /// Receive Control, §8.2.3.8.10.
        pub RXCTRL [
            /// Receive enable.
            RXEN OFFSET(0) NUMBITS(1) []
        ],
        /// Filter Control, §8.2.3.7.1 (change only while RXCTRL.RXEN = 0).
        pub FCTRL [
            /// Store bad packets.
            SBP OFFSET(1) NUMBITS(1) [],
            /// Multicast promiscuous (also passes broadcast).
            MPE OFFSET(8) NUMBITS(1) [],
            /// Unicast promiscuous.
            UPE OFFSET(9) NUMBITS(1) [],
            /// Accept broadcast.
            BAM OFFSET(10) NUMBITS(1) []
        ],
        /// MAC Core Control 0, §8.2.3.22.8.
        pub HLREG0 [
            /// Append CRC to transmitted frames.
            TXCRCEN OFFSET(0) NUMBITS(1) [],
            /// Strip CRC from received frames.
            RXCRCSTRP OFFSET(1) NUMBITS(1) [],
            /// Jumbo frames.
            JUMBOEN OFFSET(2) NUMBITS(1) [],
            /// Pad short transmitted frames to 64 bytes.
            TXPADEN OFFSET(10) NUMBITS(1) [],
            /// MAC loopback.
            LPBK OFFSET(15) NUMBITS(1) []
        ],
        /// Max Frame Size, §8.2.3.22.13 (used only with HLREG0.JUMBOEN).
        pub MAXFRS [
            /// Largest frame accepted, DA through CRC, in bytes (reset 1518).
            MFS OFFSET(16) NUMBITS(16) []
        ],
        /// Split Receive Control, per queue, §8.2.3.8.7.
        pub SRRCTL [
            /// Packet buffer size in 1 KB units.
            BSIZEPACKET OFFSET(0) NUMBITS(5) [],
            /// Header buffer size in 64-byte units.
            BSIZEHEADER OFFSET(8) NUMBITS(6) [],
            /// Descriptor type.
            DESCTYPE OFFSET(25) NUMBITS(3) [
                /// Legacy descriptors (reset default).
                Legacy = 0,
                /// Advanced descriptors, one buffer.
                AdvancedOneBuffer = 1
            ],
            /// Drop packets for this queue when it has no free descriptor.
            DROP_EN OFFSET(28) NUMBITS(1) []
        ],
        /// Receive Descriptor Control, per queue, §8.2.3.8.6.
        pub RXDCTL [
            /// Queue enable; a read returns the actual state.
            ENABLE OFFSET(25) NUMBITS(1) [],
            /// VLAN Mode Enable: strip the 802.1Q tag of frames for this queue into the
            /// write-back.
            VME OFFSET(30) NUMBITS(1) []
        ],
        /// VLAN Control, §8.2.3.7.2.
        pub VLNCTRL [
            /// VLAN Ether Type (TPID), 0x8100; software must not change it.
            VET OFFSET(0) NUMBITS(16) [],
            /// VLAN Filter Enable: the filter table decides acceptance of 802.1Q frames.
            VFE OFFSET(30) NUMBITS(1) []
        ],
        /// Receive DCA control, per queue, §8.2.3.11.1.
        pub DCA_RXCTRL [
            /// Reserved bit 12: initialised to 1, must be set to 0 (DS §4.6.7 step 12).
            RESERVED_12 OFFSET(12) NUMBITS(1) []
        ],
        /// Transmit DCA control, per queue, §8.2.3.11.2.
        pub DCA_TXCTRL [
            /// Relaxed ordering of descriptor and head write-back (cleared as Intel drivers do).
            TX_DESC_WB_RO_EN OFFSET(11) NUMBITS(1) []
        ],
        /// Security Rx Control, §8.2.3.12.5.
        pub SECRXCTRL [
            /// Stop the Rx security data path.
            RX_DIS OFFSET(1) NUMBITS(1) []
        ],
        /// Security Rx Status, §8.2.3.12.6.
        pub SECRXSTAT [
            /// The Rx security path is empty.
            SECRX_RDY OFFSET(0) NUMBITS(1) []
        ],
        /// DMA Tx Control, §8.2.3.9.2.
        pub DMATXCTL [
            /// Transmit enable.
            TE OFFSET(0) NUMBITS(1) []
        ],
        /// Transmit Descriptor Control, per queue, §8.2.3.9.10.
        pub TXDCTL [
            /// Prefetch threshold.
            PTHRESH OFFSET(0) NUMBITS(7) [],
            /// Host threshold.
            HTHRESH OFFSET(8) NUMBITS(7) [],
            /// Write-back threshold (0: write back descriptors with RS as soon as processed).
            WTHRESH OFFSET(16) NUMBITS(7) [],
            /// Queue enable; a read returns the actual state.
            ENABLE OFFSET(25) NUMBITS(1) []
        ],
        /// DCB Transmit Descriptor Plane Control and Status, §8.2.3.10.2.
        pub RTTDCS [
            /// Pause the Tx descriptor arbiter while buffers are reconfigured.
            ARBDIS OFFSET(6) NUMBITS(1) []
        ],
        /// Max Total DMA Tx Read Requests, §8.2.3.9.1 (bits 31:12 reserved).
        pub DTXMXSZRQ [
            /// Outstanding PCIe read bytes in 256-byte units.
            MAX_BYTES_NUM_REQ OFFSET(0) NUMBITS(12) []
        ],
        /// Packet buffer size registers (RXPBSIZE §8.2.3.8.9, TXPBSIZE §8.2.3.9.13).
        pub PBSIZE [
            /// Size in KB.
            SIZE OFFSET(10) NUMBITS(10) []
        ],
        /// Flow control receive threshold high, §8.2.3.3.4.
        pub FCRTH [
            /// Threshold in bytes (32-byte granularity).
            RTH OFFSET(5) NUMBITS(14) [],
            /// Transmit XOFF enable.
            FCEN OFFSET(31) NUMBITS(1) []
        ],
        /// Auto-Negotiation Control, §8.2.3.22.19.
        pub AUTOC [
            /// Restart auto-negotiation (self-clearing).
            RESTART_AN OFFSET(12) NUMBITS(1) [],
            /// Link mode select.
            LMS OFFSET(13) NUMBITS(3) [
                /// 10 GbE serial link (SFI), no auto-negotiation.
                TenGSerial = 0b011
            ]
        ],
        /// Link Status, §8.2.3.22.20.
        pub LINKS [
            /// Link speed.
            LINK_SPEED OFFSET(28) NUMBITS(2) [
                /// 100 Mb/s.
                Speed100M = 0b01,
                /// 1 Gb/s.
                Speed1G = 0b10,
                /// 10 Gb/s.
                Speed10G = 0b11
            ],
            /// Link up.
            LINK_UP OFFSET(30) NUMBITS(1) []
        ],
        /// Receive Address High, §8.2.3.7.9.
        pub RAH [
            /// MAC bytes 4 and 5.
            RAH OFFSET(0) NUMBITS(16) [],
            /// Address valid.
            AV OFFSET(31) NUMBITS(1) []
        ],
        /// Multiple Receive Queues Command, §8.2.3.7.12.
        pub MRQC [
            /// Multiple receive queues enable.
            MRQE OFFSET(0) NUMBITS(4) [
                /// RSS disabled: everything to queue 0.
                Disabled = 0b0000,
                /// RSS only, up to 16 queues.
                Rss = 0b0001
            ],
            /// Hash TCP over IPv4.
            TCP_IPV4 OFFSET(16) NUMBITS(1) [],
            /// Hash IPv4 addresses.
            IPV4 OFFSET(17) NUMBITS(1) [],
            /// Hash IPv6 addresses.
            IPV6 OFFSET(20) NUMBITS(1) [],
            /// Hash TCP over IPv6.
            TCP_IPV6 OFFSET(21) NUMBITS(1) [],
            /// Hash UDP over IPv4.
            UDP_IPV4 OFFSET(22) NUMBITS(1) [],
            /// Hash UDP over IPv6.
            UDP_IPV6 OFFSET(23) NUMBITS(1) []
        ],
        /// Receive Checksum Control, §8.2.3.7.5.
        pub RXCSUM [
            /// Put the RSS hash (not the fragment checksum) in the descriptor.
            PCSD OFFSET(13) NUMBITS(1) []
        ],
        /// General Purpose Interrupt Enable, §8.2.3.5.18.
        pub GPIE [
            /// MSI-X with one vector per cause group (IVAR chooses the vector).
            MULTIPLE_MSIX OFFSET(4) NUMBITS(1) [],
            /// Other Clear Disable: reading EICR clears only the queue bits.
            OCD OFFSET(5) NUMBITS(1) [],
            /// EIAM applies in MSI-X mode: a vector is masked when its message is sent.
            EIAME OFFSET(30) NUMBITS(1) [],
            /// Pending bits are reported in the MSI-X PBA.
            PBA_SUPPORT OFFSET(31) NUMBITS(1) []
        ],
        /// Extended Interrupt Throttle, §8.2.3.5.12.
        pub EITR [
            /// Minimum interval between interrupts, 2 µs units at 1 and 10 Gb/s; 0: none.
            ITR_INTERVAL OFFSET(3) NUMBITS(9) [],
            /// Counter write disable (write only): the write does not restart the counter.
            CNT_WDIS OFFSET(31) NUMBITS(1) []
        ]
    ];
}
pub use fields::*;

// §8.2.3.1–2: general control, EEPROM.
/// Device Control.
pub const CTRL: Reg<CTRL::Register> = Reg::at(0x00000);
/// Device Status.
pub const STATUS: Reg<STATUS::Register> = Reg::at(0x00008);
/// Extended Device Control.
pub const CTRL_EXT: Reg<CTRL_EXT::Register> = Reg::at(0x00018);
/// EEPROM/Flash Control.
pub const EEC: Reg<EEC::Register> = Reg::at(0x10010);
/// Extended SDP Control.
pub const ESDP: Reg<ESDP::Register> = Reg::at(0x00020);

// §8.2.3.4: semaphores shared with firmware and the other port.
/// Software Semaphore.
pub const SWSM: Reg<SWSM::Register> = Reg::at(0x10140);
/// Firmware Semaphore.
pub const FWSM: Reg<FWSM::Register> = Reg::at(0x10148);
/// Software-Firmware Synchronisation.
pub const SW_FW_SYNC: Reg<SW_FW_SYNC::Register> = Reg::at(0x10160);

// §8.2.3.5: interrupts (masked by init; set up by `interrupts` when asked for).
/// Extended Interrupt Mask Clear (bit 31 reserved).
pub const EIMC: Reg = Reg::at(0x00888);
/// Value that masks every interrupt cause without touching reserved bit 31 (ixy.rs #29).
pub const EIMC_ALL: u32 = 0x7FFF_FFFF;
/// Extended Interrupt Mask Clear for queue vectors, n = 0..1 (EIMC_EX 1..2 in the datasheet).
pub const fn eimc_ex(n: u32) -> Reg {
    Reg::at(0x00AB0 + 4 * n)
}
/// Extended Interrupt Cause (RW1C; bits 15:0 queue causes, 20 LSC), §8.2.3.5.1.
pub const EICR: Reg = Reg::at(0x00800);
/// Extended Interrupt Cause Set (write-only; a read returns EICR without clearing it).
pub const EICS: Reg = Reg::at(0x00808);
/// Extended Interrupt Auto Clear: bits 15:0 clear a queue cause when its message is sent.
pub const EIAC: Reg = Reg::at(0x00810);
/// Extended Interrupt Mask Set (bit 31 reserved).
pub const EIMS: Reg = Reg::at(0x00880);
/// Extended Interrupt Auto Mask Enable (bits 30:16; the queue bits are in EIAM_EX).
pub const EIAM: Reg = Reg::at(0x00890);
/// General Purpose Interrupt Enable.
pub const GPIE: Reg<GPIE::Register> = Reg::at(0x00898);
/// EICR bit 20: link status change.
pub const EICR_LSC: u32 = 1 << 20;
/// Extended Interrupt Cause Set for queue vectors 32·n..32·n+31, n = 0..1.
pub const fn eics_ex(n: u32) -> Reg {
    Reg::at(0x00A90 + 4 * n)
}
/// Extended Interrupt Mask Set for queue vectors 32·n..32·n+31, n = 0..1.
pub const fn eims_ex(n: u32) -> Reg {
    Reg::at(0x00AA0 + 4 * n)
}
/// Extended Interrupt Auto Mask for queue vectors 32·n..32·n+31, n = 0..1.
pub const fn eiam_ex(n: u32) -> Reg {
    Reg::at(0x00AD0 + 4 * n)
}
/// Extended Interrupt Throttle of vector n = 0..63 (0..23 low block, the rest at 0x12300).
pub const fn eitr(n: u32) -> Reg<EITR::Register> {
    if n < 24 {
        Reg::at(0x00820 + 4 * n)
    } else {
        Reg::at(0x12300 + 4 * (n - 24))
    }
}
/// Interrupt Vector Allocation, n = 0..63: Rx queue 2n (bits 7:0), Tx 2n (15:8), Rx 2n+1
/// (23:16), Tx 2n+1 (31:24); each entry is a vector in bits 5:0 and a valid bit 7 (§8.2.3.5.16).
pub const fn ivar(n: u32) -> Reg {
    Reg::at(0x00900 + 4 * n)
}
/// Miscellaneous Interrupt Vector Allocation: the "other" causes' vector in bits 14:8, valid 15.
pub const IVAR_MISC: Reg = Reg::at(0x00A00);

// §8.2.3.7–8: receive global and filtering.
/// Receive Control.
pub const RXCTRL: Reg<RXCTRL::Register> = Reg::at(0x03000);
/// Receive DMA Control.
pub const RDRXCTL: Reg<RDRXCTL::Register> = Reg::at(0x02F00);
/// Filter Control.
pub const FCTRL: Reg<FCTRL::Register> = Reg::at(0x05080);
/// Receive Checksum Control.
pub const RXCSUM: Reg<RXCSUM::Register> = Reg::at(0x05000);
/// Multiple Receive Queues Command.
pub const MRQC: Reg<MRQC::Register> = Reg::at(0x0EC80);
/// Rx packet buffer size, n = 0..7.
pub const fn rxpbsize(n: u32) -> Reg<PBSIZE::Register> {
    Reg::at(0x03C00 + 4 * n)
}
/// Flow control receive threshold high, n = 0..7.
pub const fn fcrth(n: u32) -> Reg<FCRTH::Register> {
    Reg::at(0x03260 + 4 * n)
}
/// VLAN Control.
pub const VLNCTRL: Reg<VLNCTRL::Register> = Reg::at(0x05088);
/// VLAN Filter Table Array, n = 0..127: bit i of register n passes VLAN ID 32n + i
/// (§8.2.3.7.11).
pub const fn vfta(n: u32) -> Reg {
    Reg::at(0x0A000 + 4 * n)
}
/// Multicast Table Array, n = 0..127.
pub const fn mta(n: u32) -> Reg {
    Reg::at(0x05200 + 4 * n)
}
/// Receive Address Low, n = 0..127 (primary 82599 address; 0x05400 is the 82598 alias).
pub const fn ral(n: u32) -> Reg {
    Reg::at(0x0A200 + 8 * n)
}
/// Receive Address High, n = 0..127.
pub const fn rah(n: u32) -> Reg<RAH::Register> {
    Reg::at(0x0A204 + 8 * n)
}
/// MAC Pool Select Array, n = 0..255: registers 2k and 2k + 1 hold the pools (0–31, 32–63)
/// receive address k belongs to (§8.2.3.7.10).
pub const fn mpsar(n: u32) -> Reg {
    Reg::at(0x0A600 + 4 * n)
}
/// RSS redirection table, n = 0..31 (4 entries each).
pub const fn reta(n: u32) -> Reg {
    Reg::at(0x0EB00 + 4 * n)
}
/// RSS random key, n = 0..9.
pub const fn rssrk(n: u32) -> Reg {
    Reg::at(0x0EB80 + 4 * n)
}
/// Rx queue statistics mapping, n = 0..31 (4 queues each).
pub const fn rqsmr(n: u32) -> Reg {
    Reg::at(0x02300 + 4 * n)
}
/// Security Rx Control.
pub const SECRXCTRL: Reg<SECRXCTRL::Register> = Reg::at(0x08D00);
/// Security Rx Status.
pub const SECRXSTAT: Reg<SECRXSTAT::Register> = Reg::at(0x08D04);

// §8.2.3.8: receive queues. Queues 0..63 at 0x01000 + 0x40·n, 64..127 at 0x0D000 + 0x40·(n−64).
/// Byte offset of receive queue `n`'s register block.
pub const fn rx_queue_base(n: u32) -> u32 {
    if n < 64 {
        0x01000 + 0x40 * n
    } else {
        0x0D000 + 0x40 * (n - 64)
    }
}
/// Rx descriptor ring base, low 32 bits (128-byte aligned).
pub const fn rdbal(n: u32) -> Reg {
    Reg::at(rx_queue_base(n))
}
/// Rx descriptor ring base, high 32 bits.
pub const fn rdbah(n: u32) -> Reg {
    Reg::at(rx_queue_base(n) + 0x04)
}
/// Rx descriptor ring length in bytes (multiple of 128).
pub const fn rdlen(n: u32) -> Reg {
    Reg::at(rx_queue_base(n) + 0x08)
}
/// Rx DCA control (primary address).
pub const fn dca_rxctrl(n: u32) -> Reg<DCA_RXCTRL::Register> {
    Reg::at(rx_queue_base(n) + 0x0C)
}
/// Rx descriptor head (read only).
pub const fn rdh(n: u32) -> Reg {
    Reg::at(rx_queue_base(n) + 0x10)
}
/// Split receive control (primary address).
pub const fn srrctl(n: u32) -> Reg<SRRCTL::Register> {
    Reg::at(rx_queue_base(n) + 0x14)
}
/// Rx descriptor tail.
pub const fn rdt(n: u32) -> Reg {
    Reg::at(rx_queue_base(n) + 0x18)
}
/// Rx descriptor control.
pub const fn rxdctl(n: u32) -> Reg<RXDCTL::Register> {
    Reg::at(rx_queue_base(n) + 0x28)
}

// §8.2.3.9–10: transmit global and queues (0x06000 + 0x40·n, n = 0..127).
/// DMA Tx Control.
pub const DMATXCTL: Reg<DMATXCTL::Register> = Reg::at(0x04A80);
/// Max total DMA Tx read requests.
pub const DTXMXSZRQ: Reg<DTXMXSZRQ::Register> = Reg::at(0x08100);
/// Multiple Transmit Queues Command.
pub const MTQC: Reg = Reg::at(0x08120);
/// DCB Tx descriptor plane control and status.
pub const RTTDCS: Reg<RTTDCS::Register> = Reg::at(0x04900);
/// Tx packet buffer size, n = 0..7.
pub const fn txpbsize(n: u32) -> Reg<PBSIZE::Register> {
    Reg::at(0x0CC00 + 4 * n)
}
/// Tx packet buffer threshold, n = 0..7 (KB).
pub const fn txpbthresh(n: u32) -> Reg {
    Reg::at(0x04950 + 4 * n)
}
/// Tx queue statistics mapping, n = 0..31 (4 queues each).
pub const fn tqsm(n: u32) -> Reg {
    Reg::at(0x08600 + 4 * n)
}
/// Byte offset of transmit queue `n`'s register block.
pub const fn tx_queue_base(n: u32) -> u32 {
    0x06000 + 0x40 * n
}
/// Tx descriptor ring base, low 32 bits.
pub const fn tdbal(n: u32) -> Reg {
    Reg::at(tx_queue_base(n))
}
/// Tx descriptor ring base, high 32 bits.
pub const fn tdbah(n: u32) -> Reg {
    Reg::at(tx_queue_base(n) + 0x04)
}
/// Tx descriptor ring length in bytes.
pub const fn tdlen(n: u32) -> Reg {
    Reg::at(tx_queue_base(n) + 0x08)
}
/// Tx DCA control.
pub const fn dca_txctrl(n: u32) -> Reg<DCA_TXCTRL::Register> {
    Reg::at(tx_queue_base(n) + 0x0C)
}
/// Tx descriptor head (read only).
pub const fn tdh(n: u32) -> Reg {
    Reg::at(tx_queue_base(n) + 0x10)
}
/// Tx descriptor tail.
pub const fn tdt(n: u32) -> Reg {
    Reg::at(tx_queue_base(n) + 0x18)
}
/// Tx descriptor control.
pub const fn txdctl(n: u32) -> Reg<TXDCTL::Register> {
    Reg::at(tx_queue_base(n) + 0x28)
}

// §8.2.3.10: the transmit rate scheduler (§7.7.2.2); RTTBCNRC is per queue, selected by RTTDQSEL.
/// DCB Tx descriptor plane queue select: which queue RTTBCNRC (and RTTDT1C) address.
pub const RTTDQSEL: Reg = Reg::at(0x04904);
/// Tx rate-scheduler MMW (compensation window) of all queues.
pub const RTTBCNRM: Reg = Reg::at(0x04980);
/// Tx rate-scheduler config of the queue RTTDQSEL selects: RS_ENA (31), RF_INT (23:14),
/// RF_DEC (13:0).
pub const RTTBCNRC: Reg = Reg::at(0x04984);
/// RTTBCNRC.RS_ENA: the rate scheduler of the selected queue is on.
pub const RTTBCNRC_RS_ENA: u32 = 1 << 31;
/// RTTBCNRC.RF_INT starts here; RF_DEC below it is the 14-bit fraction.
pub const RTTBCNRC_RF_INT_SHIFT: u32 = 14;
/// RTTBCNRC.RF_INT and RF_DEC together: the rate factor in 10.14 fixed point.
pub const RTTBCNRC_RF_MASK: u32 = (1 << 24) - 1;

// §8.2.3.26–27: IEEE 1588 time sync (§7.9).
/// Rx time sync control: VALID (0, read only), TYPE (3:1), EN (4).
pub const TSYNCRXCTL: Reg = Reg::at(0x05188);
/// Rx time stamp, low 32 bits.
pub const RXSTMPL: Reg = Reg::at(0x051E8);
/// Rx time stamp, high 32 bits; reading it frees the register for the next frame.
pub const RXSTMPH: Reg = Reg::at(0x051A4);
/// Rx message type and UDP port of the PTP frames to stamp: CTRLT (7:0), MSGT (15:8), UDPT
/// (31:16).
pub const RXMTRL: Reg = Reg::at(0x05120);
/// Tx time sync control: VALID (0, read only), EN (4).
pub const TSYNCTXCTL: Reg = Reg::at(0x08C00);
/// Tx time stamp, low 32 bits.
pub const TXSTMPL: Reg = Reg::at(0x08C04);
/// Tx time stamp, high 32 bits; reading it frees the register for the next frame.
pub const TXSTMPH: Reg = Reg::at(0x08C08);
/// System time, low 32 bits; reading it latches SYSTIMH.
pub const SYSTIML: Reg = Reg::at(0x08C0C);
/// System time, high 32 bits.
pub const SYSTIMH: Reg = Reg::at(0x08C10);
/// Increment attributes: IP (31:24, periods per increment), IV (23:0, increment value).
pub const TIMINCA: Reg = Reg::at(0x08C14);
/// TSYNCTXCTL/TSYNCRXCTL.VALID: a time stamp is latched.
pub const TSYNC_VALID: u32 = 1;
/// TSYNCTXCTL/TSYNCRXCTL.EN: time stamping on.
pub const TSYNC_EN: u32 = 1 << 4;

// §8.2.3.22: MAC and link.
/// MAC Core Control 0.
pub const HLREG0: Reg<HLREG0::Register> = Reg::at(0x04240);
/// Max Frame Size (MHADD on the 82598).
pub const MAXFRS: Reg<MAXFRS::Register> = Reg::at(0x04268);
/// Auto-Negotiation Control.
pub const AUTOC: Reg<AUTOC::Register> = Reg::at(0x042A0);
/// Link Status.
pub const LINKS: Reg<LINKS::Register> = Reg::at(0x042A4);
/// Management Control.
pub const MMNGC: Reg<MMNGC::Register> = Reg::at(0x042D0);

// §8.2.3.23: statistics. All clear on read; byte counters are 36 bits (read low first).
/// CRC error count.
pub const CRCERRS: Reg = Reg::at(0x04000);
/// Receive oversize count: frames longer than the maximum (MAXFRS.MFS with JUMBOEN, else
/// 1518) with a good CRC (§8.2.3.23.52).
pub const ROC: Reg = Reg::at(0x040AC);
/// Good packets received (includes packets later missed; see `82599.md` §9.12).
pub const GPRC: Reg = Reg::at(0x04074);
/// Good packets transmitted.
pub const GPTC: Reg = Reg::at(0x04080);
/// Good octets received, low.
pub const GORCL: Reg = Reg::at(0x04088);
/// Good octets received, high (bits 3:0).
pub const GORCH: Reg = Reg::at(0x0408C);
/// Good octets transmitted, low.
pub const GOTCL: Reg = Reg::at(0x04090);
/// Good octets transmitted, high (bits 3:0).
pub const GOTCH: Reg = Reg::at(0x04094);
/// Missed packets (Rx packet buffer n overflowed), n = 0..7.
pub const fn rxmpc(n: u32) -> Reg {
    Reg::at(0x03FA0 + 4 * n)
}
/// Packets received into queues mapped to statistics slot k, k = 0..15.
pub const fn qprc(k: u32) -> Reg {
    Reg::at(0x01030 + 0x40 * k)
}
/// Bytes received into slot k, low 32 bits.
pub const fn qbrc_l(k: u32) -> Reg {
    Reg::at(0x01034 + 0x40 * k)
}
/// Bytes received into slot k, high bits 3:0.
pub const fn qbrc_h(k: u32) -> Reg {
    Reg::at(0x01038 + 0x40 * k)
}
/// Rx packets dropped for slot k (queue disabled, or no descriptor with Drop_En).
pub const fn qprdc(k: u32) -> Reg {
    Reg::at(0x01430 + 0x40 * k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_bases_follow_the_datasheet() {
        assert_eq!(rdbal(0).offset(), 0x01000);
        assert_eq!(rxdctl(1).offset(), 0x01068);
        assert_eq!(rdt(63).offset(), 0x01000 + 0x40 * 63 + 0x18);
        assert_eq!(rdbal(64).offset(), 0x0D000);
        assert_eq!(srrctl(127).offset(), 0x0D000 + 0x40 * 63 + 0x14);
        assert_eq!(tdbal(0).offset(), 0x06000);
        assert_eq!(txdctl(127).offset(), 0x06000 + 0x40 * 127 + 0x28);
        assert_eq!(eimc_ex(1).offset(), 0x00AB4);
        assert_eq!(eitr(23).offset(), 0x0087C);
        assert_eq!(eitr(24).offset(), 0x12300);
        assert_eq!(ivar(63).offset(), 0x009FC);
    }

    #[test]
    fn fields_encode_as_the_datasheet_says() {
        assert_eq!(CTRL::RST::SET.value, 1 << 26);
        assert_eq!(
            (SRRCTL::DESCTYPE::AdvancedOneBuffer + SRRCTL::DROP_EN::SET).value,
            0x1200_0000
        );
        assert_eq!(LINKS::LINK_SPEED::Speed10G.value, 0x3000_0000);
        assert_eq!(TXDCTL::WTHRESH.val(0x7F).value, 0x007F_0000);
        let mut rdrxctl = LocalRegisterCopy::<u32, RDRXCTL::Register>::new(0x0010_8800);
        rdrxctl
            .modify(RDRXCTL::RSCFRSTSIZE::CLEAR + RDRXCTL::RSCACKC::SET + RDRXCTL::FCOE_WRFIX::SET);
        assert_eq!(rdrxctl.get(), 0x0600_8800);
    }
}
