//! Interrupt delivery as Linux's ixgbe sets it up (ixgbe_configure_msix, ixgbe_irq_enable,
//! NAPI re-enable through EIMS_EX, watchdog EICS_EX) and in legacy INTx / MSI mode.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use platform_mock::{pci, InterruptSink, NicId, Sim, SimPlatform};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Msix(u16),
    Level(bool),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Ev>>>);

impl Recorder {
    fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl InterruptSink for Recorder {
    fn msix(&mut self, vector: u16) {
        self.0.lock().expect("lock").push(Ev::Msix(vector));
    }
    fn legacy(&mut self, asserted: bool) {
        self.0.lock().expect("lock").push(Ev::Level(asserted));
    }
}

const EIAC: u32 = 0x00810;
const GPIE: u32 = 0x00898;
const IVAR_MISC: u32 = 0x00A00;
const EICS_EX0: u32 = 0x00A90;
const EIMS_EX0: u32 = 0x00AA0;
const EIMC_EX0: u32 = 0x00AB0;
const EIAM_EX0: u32 = 0x00AD0;
const GPIE_MSIX_MODE: u32 = 1 << 4;
const GPIE_OCD: u32 = 1 << 5;
const GPIE_EIAME: u32 = 1 << 30;
const GPIE_PBA_SUPPORT: u32 = 1 << 31;
const LSC: u32 = 1 << 20;

fn ivar(q: u32) -> u32 {
    0x00900 + 4 * (q / 2)
}

fn eitr(v: u32) -> u32 {
    0x00820 + 4 * v
}

fn cfg16(sim: &Sim, nic: NicId, off: u16) -> u16 {
    let mut b = [0u8; 2];
    sim.config_read(nic, off, &mut b);
    u16::from_le_bytes(b)
}

fn wcfg16(sim: &Sim, nic: NicId, off: u16, v: u16) {
    sim.config_write(nic, off, &v.to_le_bytes());
}

/// MSI-X as Linux sets it up: RX queue 0 and TX queue 0 on vector 0, RX queue 1 on vector 1,
/// "other" causes on vector 2 (ixgbe_configure_msix, ixgbe_setup_gpie, ixgbe_irq_enable).
fn msix_setup(itr_us: u32) -> (Sim, NicId, SimPlatform, Recorder) {
    let (sim, nic, p) = one_nic();
    let rec = Recorder::default();
    sim.attach_interrupts(nic, Box::new(rec.clone()));
    // The PCI core enables MSI-X and unmasks the vectors it uses.
    wcfg16(&sim, nic, pci::CAP_MSIX + 2, pci::MSIX_ENABLE);
    for v in 0..3 {
        sim.bar4_write(nic, 16 * v, 0xFEE0_0000);
        sim.bar4_write(nic, 16 * v + 8, 0x40 + v);
        sim.bar4_write(nic, 16 * v + 12, 0);
    }
    wr(
        &p,
        GPIE,
        GPIE_MSIX_MODE | GPIE_PBA_SUPPORT | GPIE_EIAME | GPIE_OCD,
    );
    wr(&p, EIAM_EX0, 0xFFFF_FFFF);
    wr(&p, EIAM_EX0 + 4, 0xFFFF_FFFF);
    wr(&p, ivar(0), 0x80 | (0x80 << 8) | (0x81 << 16)); // RX0, TX0 -> 0; RX1 -> 1
    wr(&p, IVAR_MISC, (0x80 | 2) << 8);
    for v in 0..3 {
        wr(&p, eitr(v), (itr_us / 2) << 3);
    }
    wr(&p, EIAC, 0x4000_FFFF);
    let _ = rd(&p, EICR); // clear what is pending (LSC of the first link-up)
    wr(&p, EICR, 0xFFFF_0000);
    wr(&p, EIMS, LSC);
    wr(&p, EIMS_EX0, 0xFFFF_FFFF);
    wr(&p, EIMS_EX0 + 4, 0xFFFF_FFFF);
    (sim, nic, p, rec)
}

#[test]
fn rx_writeback_fires_its_vector_with_auto_clear_and_auto_mask() {
    let (sim, nic, p, rec) = msix_setup(0);
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    assert!(rec.take().is_empty());
    sim.inject(nic, &frame_to(MAC, 100));
    assert_eq!(rec.take(), [Ev::Msix(0)]);
    assert_eq!(rd(&p, EICS) & 1, 0, "EIAC auto-cleared the cause");
    assert_eq!(rd(&p, EIMS_EX0) & 1, 0, "EIAM auto-masked the vector");
    sim.inject(nic, &frame_to(MAC, 100));
    assert!(rec.take().is_empty(), "masked: no message");
    assert_eq!(rd(&p, EICS) & 1, 1, "cause pending");
    // NAPI done: ixgbe_irq_enable_queues re-enables through EIMS_EX.
    wr(&p, EIMS_EX0, 1);
    assert_eq!(
        rec.take(),
        [Ev::Msix(0)],
        "pending cause fires on re-enable"
    );
    assert_no_violations(&sim);
}

#[test]
fn eitr_holds_the_second_message_until_the_interval_passed() {
    let (sim, nic, p, rec) = msix_setup(100);
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let t0 = sim.now();
    sim.inject(nic, &frame_to(MAC, 100));
    assert_eq!(rec.take(), [Ev::Msix(0)]);
    sim.inject(nic, &frame_to(MAC, 100));
    wr(&p, EIMS_EX0, 1);
    assert!(rec.take().is_empty(), "within 100 µs of the last message");
    sim.advance(Duration::from_micros(40));
    assert!(rec.take().is_empty());
    // One long advance stops at the deadline: the message goes out at t0 + 100 µs.
    sim.advance(Duration::from_millis(5));
    assert_eq!(rec.take(), [Ev::Msix(0)]);
    assert!(sim.now() >= t0 + Duration::from_micros(100));
}

#[test]
fn tx_writeback_and_watchdog_eics_ex() {
    let (sim, _nic, p, rec) = msix_setup(0);
    let t = setup_tx(&p, 0, 8);
    t.put(&p, 0, &frame_to(MAC_B, 60), data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert_eq!(rec.take(), [Ev::Msix(0)], "TX write-back (RS) through IVAR");
    // ixgbe_check_hang_subtask: ixgbe_irq_rearm_queues writes EICS_EX for live vectors.
    wr(&p, EICS_EX0, 0b10);
    assert_eq!(rec.take(), [Ev::Msix(1)]);
    // A vector masked with EIMC_EX does not fire.
    wr(&p, EIMC_EX0, 0b100);
    wr(&p, EICS_EX0, 0b100);
    assert!(rec.take().is_empty());
    wr(&p, EIMS_EX0, 0b100);
    assert_eq!(rec.take(), [Ev::Msix(2)]);
    assert_no_violations(&sim);
}

#[test]
fn link_change_goes_to_the_other_vector_and_is_not_auto_cleared() {
    let (sim, nic, p, rec) = msix_setup(0);
    sim.set_link(nic, false);
    assert_eq!(rec.take(), [Ev::Msix(2)]);
    // ixgbe_msix_other: read causes through EICS (no clear), write them back to EICR.
    let eicr = rd(&p, EICS) & 0xFFFF_0000;
    assert_ne!(eicr & LSC, 0);
    assert_ne!(rd(&p, EICS) & LSC, 0, "EICS reads do not clear");
    wr(&p, EICR, eicr);
    assert_eq!(rd(&p, EICS) & LSC, 0);
    // With GPIE.OCD an EICR read leaves the other causes alone.
    sim.set_link(nic, true);
    sim.advance(Duration::from_millis(25));
    assert_eq!(rec.take(), [Ev::Msix(2)], "LSC again on link up");
    assert_ne!(rd(&p, EICR) & LSC, 0);
    assert_ne!(rd(&p, EICR) & LSC, 0, "OCD: not cleared by the read");
}

#[test]
fn masked_table_entry_sets_pba_until_unmasked() {
    let (sim, nic, p, rec) = msix_setup(0);
    sim.bar4_write(nic, 16 + 12, 1); // mask vector 1
    wr(&p, EICS_EX0, 0b10);
    assert!(rec.take().is_empty());
    assert_eq!(sim.bar4_read(nic, 0x2000), 0b10, "PBA bit set");
    sim.bar4_write(nic, 16 + 12, 0);
    assert_eq!(rec.take(), [Ev::Msix(1)]);
    assert_eq!(sim.bar4_read(nic, 0x2000), 0);
    // Function mask holds every vector.
    wcfg16(
        &sim,
        nic,
        pci::CAP_MSIX + 2,
        pci::MSIX_ENABLE | pci::MSIX_FUNCTION_MASK,
    );
    wr(&p, EIMS_EX0, 0b10);
    wr(&p, EICS_EX0, 0b10);
    assert!(rec.take().is_empty());
    wcfg16(&sim, nic, pci::CAP_MSIX + 2, pci::MSIX_ENABLE);
    assert_eq!(rec.take(), [Ev::Msix(1)]);
    // Table entries read back (address dword aligned, only the mask bit in control).
    sim.bar4_write(nic, 16, 0xFEE0_0003);
    assert_eq!(sim.bar4_read(nic, 16), 0xFEE0_0000);
    assert_eq!(sim.bar4_read(nic, 8), 0x40);
}

#[test]
fn no_msix_messages_unless_enabled_in_config_space() {
    let (sim, nic, p, rec) = msix_setup(0);
    wcfg16(&sim, nic, pci::CAP_MSIX + 2, 0);
    wr(&p, EICS_EX0, 0b10);
    let got = rec.take();
    assert!(!got.iter().any(|e| matches!(e, Ev::Msix(_))), "{got:?}");
}

#[test]
fn legacy_level_follows_eicr_and_eims() {
    let (sim, nic, p) = one_nic();
    let rec = Recorder::default();
    sim.attach_interrupts(nic, Box::new(rec.clone()));
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let _ = rd(&p, EICR);
    // Legacy: RX queue 0 -> EICR bit 0 (IVAR INT_Alloc bits 3:0).
    wr(&p, ivar(0), 0x80);
    wr(&p, EIMS, 0x1 | LSC);
    assert!(rec.take().is_empty());
    sim.inject(nic, &frame_to(MAC, 100));
    assert_eq!(rec.take(), [Ev::Level(true)]);
    assert_ne!(cfg16(&sim, nic, 0x06) & (1 << 3), 0, "Interrupt Status");
    assert_eq!(rd(&p, EICR) & 1, 1, "the ISR reads EICR ...");
    assert_eq!(
        rec.take(),
        [Ev::Level(false)],
        "... which clears it (OCD = 0)"
    );
    assert_eq!(cfg16(&sim, nic, 0x06) & (1 << 3), 0);
    // INTx Disable: no assertion, though Interrupt Status shows it.
    wcfg16(
        &sim,
        nic,
        0x04,
        pci::CMD_MEM | pci::CMD_BME | pci::CMD_INTX_DISABLE,
    );
    wr(&p, EICS, 1);
    assert!(rec.take().is_empty());
    assert_ne!(cfg16(&sim, nic, 0x06) & (1 << 3), 0);
    wcfg16(&sim, nic, 0x04, pci::CMD_MEM | pci::CMD_BME);
    assert_eq!(rec.take(), [Ev::Level(true)]);
    wr(&p, EIMC, 1);
    assert_eq!(rec.take(), [Ev::Level(false)], "masking drops the level");
    // EIAM auto-masks on the EICR read outside MSI-X mode.
    wr(&p, 0x00890, 1); // EIAM
    wr(&p, EIMS, 1);
    assert_eq!(rec.take(), [Ev::Level(true)]);
    let _ = rd(&p, EICR);
    assert_eq!(rd(&p, EIMS) & 1, 0);
    assert_eq!(rec.take(), [Ev::Level(false)]);
    assert_no_violations(&sim);
}

#[test]
fn msi_mode_uses_the_single_level_and_its_mask() {
    let (sim, nic, p) = one_nic();
    let rec = Recorder::default();
    sim.attach_interrupts(nic, Box::new(rec.clone()));
    let _ = rd(&p, EICR);
    wcfg16(&sim, nic, pci::CAP_MSI + 2, pci::MSI_ENABLE);
    sim.config_write(nic, pci::CAP_MSI + 16, &1u32.to_le_bytes()); // mask
    wr(&p, EIMS, 1);
    wr(&p, EICS, 1);
    assert!(rec.take().is_empty(), "masked MSI");
    let mut pend = [0u8; 4];
    sim.config_read(nic, pci::CAP_MSI + 20, &mut pend);
    assert_eq!(pend, [1, 0, 0, 0], "MSI pending bit");
    sim.config_write(nic, pci::CAP_MSI + 16, &0u32.to_le_bytes());
    assert_eq!(rec.take(), [Ev::Level(true)]);
    // EIMC bit 31 is still a violation.
    wr(&p, EIMC, 0xFFFF_FFFF);
    assert!(kinds(&sim).contains(&platform_mock::ViolationKind::ReservedBits));
}
