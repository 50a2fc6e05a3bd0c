//! Bringing the device up, in the datasheet's order (§4.6.3–§4.6.8), with every wait bounded.

use core::time::Duration;

use crate::config::Config;
use crate::device::{Device, Started};
use crate::error::Error;
use crate::ids;
use crate::link;
use crate::mempool::Mempool;
use crate::offload;
use crate::platform::Platform;
use crate::regs::{self, Regs};
use crate::rx::RxQueue;
use crate::rxctrl::{enable_rx, fctrl_value};
use crate::tx::TxQueue;
use crate::wait::poll;

/// How long the waits of the init sequence may take.
const RESET_SETTLE: Duration = Duration::from_millis(10);
const RESET_TIMEOUT: Duration = Duration::from_millis(50);
const EEPROM_TIMEOUT: Duration = Duration::from_secs(1);
const DMA_INIT_TIMEOUT: Duration = Duration::from_secs(1);
const MASTER_DISABLE_TIMEOUT: Duration = Duration::from_millis(80);

/// The RSS key (any 40 bytes work; this is the datasheet's verification key, §7.1.2.8.3).
const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

impl<P: Platform> Device<P> {
    /// Resets and initialises the device in the datasheet's order and starts its queues.
    ///
    /// `pools` gives the Rx buffers: one pool shared by every Rx queue, or one per queue. The
    /// pools must outlive the queues. Does not wait for link: see [`Device::wait_for_link`].
    pub fn init<'a>(
        platform: P,
        config: &Config,
        pools: &'a [Mempool<P>],
    ) -> Result<Started<'a, P>, Error> {
        init(platform, config, pools)
    }
}

pub(crate) fn init<'a, P: Platform>(
    platform: P,
    config: &Config,
    pools: &'a [Mempool<P>],
) -> Result<Started<'a, P>, Error> {
    config.validate(pools.len())?;
    // A frame of the maximum size must fit the chain of buffers `rx_chains` builds.
    let max = usize::from(config.max_frame_size);
    if pools
        .iter()
        .any(|p| (p.buf_size() as usize).saturating_mul(crate::chain::MAX_SEGMENTS) < max)
    {
        return Err(Error::InvalidConfig {
            what: "max_frame_size needs more than MAX_SEGMENTS buffers of the pool's size",
        });
    }
    let device_id = platform.pci_device_id();
    let info = ids::supported_device(ids::INTEL_VENDOR_ID, device_id)
        .ok_or(Error::UnsupportedDevice { device: device_id })?;
    let regs = Regs::new(platform);
    log::debug!(
        "init: 8086:{device_id:04x} ({}), {:?} media",
        info.name,
        info.media
    );

    // §4.6.3.1: disable interrupts.
    mask_interrupts(&regs);
    // §4.6.3.2: global reset (software + link reset), preceded by the master-disable flow of
    // §5.2.5.3.2 so no DMA is in flight when the reset hits. Where manageability vetoes link
    // resets, the software reset alone (Intel's shared code: a link reset "might reset the PHY
    // when mng is using it").
    let link_reset = !link::reset_blocked(&regs);
    let master_stopped = master_disable(&regs);
    reset(&regs, link_reset)?;
    if !master_stopped {
        // §5.2.5.3.2: when master disable does not complete, issue a second reset.
        regs.platform().delay(Duration::from_micros(10));
        reset(&regs, link_reset)?;
    }
    // §4.6.3.1 again: the datasheet orders disable, reset, disable.
    mask_interrupts(&regs);
    log::debug!(
        "init: reset done (link reset: {link_reset}, second reset: {})",
        !master_stopped
    );

    // §4.6.3 steps 3–4: EEPROM auto-read and DMA init must be done before anything else.
    poll(
        regs.platform(),
        EEPROM_TIMEOUT,
        "EEC.AUTO_RD (EEPROM auto-read done)",
        || regs.is_set(regs::EEC, regs::EEC::AUTO_RD),
    )?;
    // Auto_RD is set even without a valid NVM (§8.2.3.2.1): check that one was read, and that
    // firmware found no error in it.
    if !regs.is_set(regs::EEC, regs::EEC::EE_PRES) {
        return Err(Error::NoEeprom);
    }
    let fw_error = regs.get(regs::FWSM).read(regs::FWSM::EXT_ERR_IND) as u8;
    if fw_error != 0 {
        return Err(Error::Firmware { code: fw_error });
    }
    poll(
        regs.platform(),
        DMA_INIT_TIMEOUT,
        "RDRXCTL.DMAIDONE (DMA init done)",
        || regs.is_set(regs::RDRXCTL, regs::RDRXCTL::DMAIDONE),
    )?;
    log::debug!("init: EEPROM auto-read and DMA init done");
    // Tell firmware a driver owns the port (§8.2.3.1.3).
    regs.modify(regs::CTRL_EXT, regs::CTRL_EXT::DRV_LOAD::SET);

    // §4.6.4 link setup for the board's media (laser, link mode); waiting for link is
    // `Device::wait_for_link`.
    link::setup(&regs, info.media)?;

    let device = Device::new(regs.clone(), config);
    // §4.6.5: statistics registers are clear-on-read: read them once so totals start at zero.
    device.reset_stats();

    // §4.6.7: receive.
    init_rx_global(&regs, config);
    let mut rx = heapless::Vec::new();
    for q in 0..config.rx_queues {
        let pool = if pools.len() == 1 {
            &pools[0]
        } else {
            &pools[usize::from(q)]
        };
        let mut queue = RxQueue::setup(
            &regs,
            q,
            config.rx_ring_size,
            pool.core(),
            config.rx_drop_when_full,
        )?;
        queue.set_max_frame(config.max_frame_size);
        queue.set_offload_mask(rx_offload_mask(config));
        if config.vlan_strip {
            regs.modify(regs::rxdctl(u32::from(q)), regs::RXDCTL::VME::SET);
        }
        // Capacity MAX_RX_QUEUES was checked by validate.
        let _ = rx.push(queue);
    }
    for queue in rx.iter_mut() {
        queue.enable()?;
    }
    enable_rx(&regs);
    log::debug!("init: {} rx queue(s) enabled, receive on", config.rx_queues);

    // §4.6.8: transmit.
    init_tx_global(&regs);
    let mut tx = heapless::Vec::new();
    for q in 0..config.tx_queues {
        let mut queue = TxQueue::setup(&regs, q, config.tx_ring_size)?;
        queue.set_max_frame(config.max_frame_size);
        let _ = tx.push(queue);
    }
    // Step 8: DMATXCTL.TE once, before the queues are enabled (it also enables queue 0).
    regs.modify(regs::DMATXCTL, regs::DMATXCTL::TE::SET);
    for queue in tx.iter_mut() {
        queue.enable()?;
    }
    log::debug!("init: {} tx queue(s) enabled", config.tx_queues);
    Ok(Started { device, rx, tx })
}

/// The write-back status bits each Rx queue passes on to its packets ([`crate::offload`]).
fn rx_offload_mask(config: &Config) -> u32 {
    let checksums = if config.rx_checksum {
        offload::rx_bits::CHECKSUMS
    } else {
        0
    };
    let vlan = if config.vlan_strip {
        offload::rx_bits::VP
    } else {
        0
    };
    checksums | vlan
}

/// EIMC = 0x7FFFFFFF (bit 31 is reserved: ixy.rs #29), then the two extended banks.
fn mask_interrupts<P: Platform>(regs: &Regs<P>) {
    regs.write(regs::EIMC, regs::EIMC_ALL);
    regs.write(regs::eimc_ex(0), u32::MAX);
    regs.write(regs::eimc_ex(1), u32::MAX);
}

/// §5.2.5.3.2: set CTRL.PCIe Master Disable and wait for STATUS.PCIe Master Enable Status to
/// clear. Returns false when it does not (the caller then resets twice, as the datasheet says).
fn master_disable<P: Platform>(regs: &Regs<P>) -> bool {
    regs.modify(regs::CTRL, regs::CTRL::MASTER_DISABLE::SET);
    poll(
        regs.platform(),
        MASTER_DISABLE_TIMEOUT,
        "STATUS.PCIe Master Enable Status to clear",
        || !regs.is_set(regs::STATUS, regs::STATUS::MASTER_ENABLE_STATUS),
    )
    .is_ok()
}

/// §4.6.3.2: CTRL.RST | CTRL.LRST (RST alone when `link_reset` is false), wait 1 ms before
/// polling (§8.2.3.1.1), poll both clear, then wait at least 10 ms.
fn reset<P: Platform>(regs: &Regs<P>, link_reset: bool) -> Result<(), Error> {
    if link_reset {
        regs.modify(regs::CTRL, regs::CTRL::RST::SET + regs::CTRL::LRST::SET);
    } else {
        regs.modify(regs::CTRL, regs::CTRL::RST::SET);
    }
    regs.platform().delay(Duration::from_millis(1));
    poll(
        regs.platform(),
        RESET_TIMEOUT,
        "CTRL.RST and CTRL.LRST to self-clear",
        || {
            let ctrl = regs.get(regs::CTRL);
            !ctrl.is_set(regs::CTRL::RST) && !ctrl.is_set(regs::CTRL::LRST)
        },
    )?;
    regs.platform().delay(RESET_SETTLE);
    Ok(())
}

/// §4.6.7 global part, with RXCTRL.RXEN = 0 throughout.
fn init_rx_global<P: Platform>(regs: &Regs<P>, config: &Config) {
    regs.write(regs::RXCTRL, 0);
    // Step 1: RAR0 comes from the EEPROM (and reset cleared every other AV); clear the
    // multicast table, which is undefined after reset.
    for n in 0..128 {
        regs.write(regs::mta(n), 0);
    }
    // MPSAR has no reset value (§8.2.3.7.10: software initialises it): RAR0 to pool 0, every
    // other address in no pool, as Linux's set_rar / clear_vmdq leave it. A receive address in
    // no pool passes nothing.
    regs.write(regs::mpsar(0), 1);
    for n in 1..256 {
        regs.write(regs::mpsar(n), 0);
    }
    // Step 2: CRC stripping in both places (they must agree, and their defaults do not), and
    // the RDRXCTL corrections of ixy.rs #29: RSCFRSTSIZE = 0, RSCACKC = 1, FCOE_WRFIX = 1.
    regs.modify(
        regs::HLREG0,
        regs::HLREG0::RXCRCSTRP::SET + regs::HLREG0::TXCRCEN::SET + regs::HLREG0::TXPADEN::SET,
    );
    regs.modify(
        regs::RDRXCTL,
        regs::RDRXCTL::CRC_STRIP::SET
            + regs::RDRXCTL::RSCFRSTSIZE::CLEAR
            + regs::RDRXCTL::RSCACKC::SET
            + regs::RDRXCTL::FCOE_WRFIX::SET,
    );
    // §4.6.7 step 4, jumbo frames: MAXFRS.MFS is used only with HLREG0.JUMBOEN; without it
    // the MAC takes frames of up to 1518 bytes (§8.2.3.22.13), so the default leaves both alone.
    if config.max_frame_size != crate::config::DEFAULT_MAX_FRAME_SIZE {
        regs.modify(
            regs::MAXFRS,
            regs::MAXFRS::MFS.val(u32::from(config.max_frame_size)),
        );
        regs.modify(regs::HLREG0, regs::HLREG0::JUMBOEN::SET);
    }
    // The VLAN filter table has no reset value (§8.2.3.7.11: software initialises it before
    // receive is enabled): empty. VLNCTRL.VFE makes it decide for tagged frames (§8.2.3.7.2);
    // VET keeps its 0x8100.
    for n in 0..128 {
        regs.write(regs::vfta(n), 0);
    }
    let vfe = if config.vlan_filter {
        regs::VLNCTRL::VFE::SET
    } else {
        regs::VLNCTRL::VFE::CLEAR
    };
    regs.modify(regs::VLNCTRL, vfe);
    // FCTRL only while RXEN = 0 (ixy.rs #29): broadcast always, unicast/multicast promiscuous
    // on request.
    regs.write_fields(regs::FCTRL, fctrl_value(config.promiscuous));
    // Spread queues over the statistics slots: queue q counts in slot q (q < 16).
    for n in 0..4 {
        let map = (0..4u32).fold(0, |acc, k| acc | ((n * 4 + k) << (8 * k)));
        regs.write(regs::rqsmr(n), map);
        regs.write(regs::tqsm(n), map);
    }
    // RSS over the Rx queues when there is more than one (§7.1.2.8).
    if config.rx_queues > 1 {
        for n in 0..10 {
            let k = n as usize * 4;
            let word =
                u32::from_le_bytes([RSS_KEY[k], RSS_KEY[k + 1], RSS_KEY[k + 2], RSS_KEY[k + 3]]);
            regs.write(regs::rssrk(n), word);
        }
        let queues = u32::from(config.rx_queues);
        for n in 0..32 {
            let entries = (0..4u32).fold(0, |acc, k| acc | (((n * 4 + k) % queues) << (8 * k)));
            regs.write(regs::reta(n), entries);
        }
        regs.write_fields(regs::RXCSUM, regs::RXCSUM::PCSD::SET);
        regs.write_fields(
            regs::MRQC,
            regs::MRQC::MRQE::Rss
                + regs::MRQC::IPV4::SET
                + regs::MRQC::TCP_IPV4::SET
                + regs::MRQC::UDP_IPV4::SET
                + regs::MRQC::IPV6::SET
                + regs::MRQC::TCP_IPV6::SET
                + regs::MRQC::UDP_IPV6::SET,
        );
    }
    // Step 3, DCB off (§4.6.11.3.4): the whole 512 KB packet buffer to PB0. FCRTH.RTH must be
    // set even without flow control: buffer size − 0x6000 bytes, FCEN = 0.
    regs.write_fields(regs::rxpbsize(0), regs::PBSIZE::SIZE.val(0x200));
    for n in 1..8 {
        regs.write(regs::rxpbsize(n), 0);
    }
    regs.write(regs::fcrth(0), (0x200 << 10) - 0x6000);
    // Step 12: no snoop disable.
    regs.modify(regs::CTRL_EXT, regs::CTRL_EXT::NS_DIS::SET);
}

/// §4.6.8 steps 1–4 for DCB and virtualisation off.
fn init_tx_global<P: Platform>(regs: &Regs<P>) {
    // Step 1 (HLREG0 TXCRCEN | TXPADEN) was done with the Rx CRC settings.
    regs.modify(regs::RTTDCS, regs::RTTDCS::ARBDIS::SET);
    // Step 3: 160 KB Tx buffer in PB0, threshold = size − max frame (10 KB margin, the reset
    // value), MTQC = 0 (64 queues), DTXMXSZRQ = 0xFFF (bits 31:12 are reserved, ixy.rs #29).
    regs.write_fields(regs::txpbsize(0), regs::PBSIZE::SIZE.val(0xA0));
    for n in 1..8 {
        regs.write(regs::txpbsize(n), 0);
    }
    regs.write(regs::txpbthresh(0), 0xA0 - 0xA);
    regs.write(regs::MTQC, 0);
    regs.write_fields(
        regs::DTXMXSZRQ,
        regs::DTXMXSZRQ::MAX_BYTES_NUM_REQ.val(0xFFF),
    );
    regs.modify(regs::RTTDCS, regs::RTTDCS::ARBDIS::CLEAR);
}
