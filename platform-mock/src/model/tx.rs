//! Transmit: descriptor fetch, frame assembly, write-back, statistics and the wire.

use super::nic::st;
use super::*;

/// The smallest packet the transmit path takes (Linux's `ixgbe_xmit_frame_ring` pads to it).
const TX_MIN_PAYLEN: usize = 17;

/// With WTHRESH = 0 only descriptors with RS are written back, and software must set RS at
/// least once every 40 descriptors (TXDCTL, §8.2.3.9.10): so a packet whose descriptors
/// before the last carry no RS spans at most 40 (DPDK's `IXGBE_TX_MAX_SEG` is 40 too).
const TX_MAX_WITHOUT_RS: usize = 40;

/// RS (Report Status) in a descriptor's command word (bit 27 of bits 63:32).
const TX_CMD_RS: u32 = 1 << 27;

/// Checks a packet's descriptors against the RS rule ([`TX_MAX_WITHOUT_RS`]); `tx_one` calls
/// it only for a packet with that many descriptors in a row without RS.
fn check_rs_spacing(n: &mut Nic, i: usize, q: usize, core: &mut Core, descs: &[TxDesc]) {
    let dctl = n.r(tx_base(q as u32) + Q_DCTL);
    let head_wb = n.r(tx_base(q as u32) + Q_WBAL) & 1 != 0;
    if (dctl >> 16) & 0x7F != 0 || head_wb {
        return; // write-back by threshold or head: the RS rule does not apply
    }
    // Descriptors in a row without RS: 40 of them leave a window of 40 without one.
    let mut run = 0;
    for d in descs {
        if d.cmd & TX_CMD_RS != 0 {
            run = 0;
            continue;
        }
        run += 1;
        if run >= TX_MAX_WITHOUT_RS {
            core.violate(
                i,
                ViolationKind::TxDescriptorFormat,
                format!("TX queue {q}: {TX_MAX_WITHOUT_RS} descriptors in a row without RS (a packet of {} descriptors; RS is needed at least once every 40)", descs.len()),
            );
            return;
        }
    }
}

/// The largest packet the transmit packet buffer is set up for: TXPBSIZE[0] − TXPBTHRESH[0]
/// (software sets the threshold to the buffer's size minus the largest packet, §8.2.3.9.16;
/// with DCB off every queue uses packet buffer 0), in bytes with CRC.
fn tx_max_packet(n: &Nic) -> usize {
    let size_kb = (n.r(TXPBSIZE) >> 10) & 0x3FF;
    let thresh_kb = n.r(TXPBTHRESH) & 0x3FF;
    (size_kb.saturating_sub(thresh_kb) as usize) * 1024
}

/// TX descriptor as fetched.
#[derive(Clone, Copy)]
pub(crate) struct TxDesc {
    pub(crate) addr: u64,
    pub(crate) cmd: u32,
    /// Bits 127:96: STA, IDX, CC, POPTS, PAYLEN of a data descriptor; `mss_l4len_idx` of a
    /// context descriptor.
    pub(crate) sta: u32,
}

pub(crate) enum TxStep {
    Idle,
    Frame,
    Dropped,
}

impl World {
    #[inline(never)]
    pub fn tx_process(&mut self, i: usize, q: usize) {
        loop {
            if !self.nics[i].rate.may_send(q, self.core.now) {
                break;
            }
            let step = tx_one(
                &mut self.nics[i],
                i,
                q,
                &mut self.core,
                &mut self.tx_scratch,
                &mut self.tx_descs,
            );
            match step {
                TxStep::Idle => break,
                TxStep::Dropped => continue,
                TxStep::Frame => {}
            }
            let frame = &self.tx_scratch[..];
            self.nics[i].rate.sent(q, frame.len());
            if let Some(d) = self.tx_descs.iter().find(|d| (d.cmd >> 20) & 0xF == 0b0011) {
                super::timesync::tx_frame(&mut self.nics[i], self.core.now, d.cmd);
            }
            if self.nics[i].r(HLREG0) & HLREG0_LPBK != 0 {
                rx_frame(&mut self.nics[i], i, &mut self.core, frame);
            } else if let Some(j) = self.cables[i] {
                rx_frame(&mut self.nics[j], j, &mut self.core, frame);
            } else if let Some(s) = self.sinks[i].as_mut() {
                s.receive(self.core.now, frame);
            } else {
                let n = &mut self.nics[i];
                let mut buf = if n.transmitted.len() >= MAX_TRANSMITTED {
                    n.transmitted.pop_front().unwrap_or_default()
                } else {
                    Vec::with_capacity(frame.len())
                };
                buf.clear();
                buf.extend_from_slice(frame);
                n.transmitted.push_back(buf);
            }
        }
        let n = &mut self.nics[i];
        if bit_get(&n.faults.spurious_tx, q) && n.tx[q].en {
            let len = n.ring_len(true, q);
            if len > 0 {
                let base = n.ring_base(true, q);
                let t = n.tx[q].tail;
                for k in 0..2.min(len) {
                    let idx = (t + k) % len;
                    if idx == n.tx[q].head && k > 0 {
                        break;
                    }
                    let _ = self.core.dma.write_u32(base + 16 * u64::from(idx) + 12, 1);
                }
            }
        }
    }
}

/// Fetches and sends one packet from TX queue `q`; the frame is left in `scratch`.
#[inline(never)]
pub(crate) fn tx_one(
    n: &mut Nic,
    i: usize,
    q: usize,
    core: &mut Core,
    scratch: &mut Vec<u8>,
    descs: &mut Vec<TxDesc>,
) -> TxStep {
    let qs = n.tx[q];
    if !qs.en
        || qs.head == qs.tail
        || n.r(DMATXCTL) & DMATXCTL_TE == 0
        || !n.link_is_up()
        || n.dma_blocked()
        || bit_get(&n.faults.stall_tx, q)
    {
        return TxStep::Idle;
    }
    let len = n.ring_len(true, q);
    if len == 0 || qs.head >= len {
        return TxStep::Idle;
    }
    let base = n.ring_base(true, q);
    descs.clear();
    let mut idx = qs.head;
    let mut eop = false;
    // Descriptors in a row without RS (the longest run, for the RS rule) and whether any has it.
    let (mut run, mut longest_run, mut any_rs) = (0, 0, false);
    while idx != qs.tail {
        let a = base + 16 * u64::from(idx);
        let (addr, hi) = match (core.dma.read_u64(a), core.dma.read_u64(a + 8)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(f), _) | (_, Err(f)) => {
                core.dma_fault(i, &format!("TX queue {q} descriptor fetch"), f);
                return TxStep::Idle;
            }
        };
        let cmd = hi as u32;
        if cmd & TX_CMD_RS != 0 {
            any_rs = true;
            run = 0;
        } else {
            run += 1;
            longest_run = longest_run.max(run);
        }
        descs.push(TxDesc {
            addr,
            cmd,
            sta: (hi >> 32) as u32,
        });
        idx = (idx + 1) % len;
        if cmd & (1 << 24) != 0 {
            eop = true;
            break;
        }
    }
    if !eop {
        return TxStep::Idle;
    }
    if longest_run >= TX_MAX_WITHOUT_RS {
        check_rs_spacing(n, i, q, core, descs);
    }
    scratch.clear();
    let mut bad = false;
    // DCMD, POPTS and IDX of the packet's first data descriptor (§7.2.3.2.4).
    let mut offload: Option<(u32, u32)> = None;
    for d in descs.iter() {
        let dtyp = (d.cmd >> 20) & 0xF;
        let dext = d.cmd & (1 << 29) != 0;
        if dtyp == 0b0010 && dext {
            // A context descriptor: remembered for the data descriptors that name it.
            let (idx, ctx) =
                offload::TxContext::decode(d.addr, u64::from(d.cmd) | u64::from(d.sta) << 32);
            if idx < 2 {
                n.tx[q].ctx[idx] = ctx;
            } else {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!(
                        "TX queue {q}: context descriptor IDX {idx} (a queue has contexts 0 and 1)"
                    ),
                );
            }
            continue;
        }
        if dtyp != 0b0011 || !dext {
            core.violate(
                i,
                ViolationKind::TxDescriptorFormat,
                format!("TX queue {q}: descriptor with DTYP {dtyp:#b}, DEXT {dext} (only advanced data and context descriptors are supported)"),
            );
            bad = true;
            continue;
        }
        offload.get_or_insert((d.cmd, d.sta));
        let dlen = (d.cmd & 0xFFFF) as usize;
        if dlen == 0 || dlen > 16 * 1024 {
            core.violate(
                i,
                ViolationKind::TxDataLength,
                format!("TX queue {q}: data length {dlen} (must be 1..=16384)"),
            );
            bad = true;
            continue;
        }
        if !bad {
            if let Err(f) = core.dma.read_append(d.addr, dlen, scratch) {
                core.dma_fault(i, &format!("TX queue {q} buffer read"), f);
                bad = true;
            }
        }
    }
    if !bad && scratch.len() < TX_MIN_PAYLEN {
        // Linux's ixgbe: "the minimum packet size for olinfo paylen is 17", it pads shorter
        // frames; what the MAC does with less is not specified, so the model drops it.
        core.violate(
            i,
            ViolationKind::TxDataLength,
            format!(
                "TX queue {q}: packet of {} bytes (the 82599 needs at least {TX_MIN_PAYLEN})",
                scratch.len()
            ),
        );
        bad = true;
    }
    // Write-back and head update.
    let dctl = n.r(tx_base(q as u32) + Q_DCTL);
    let wthresh = (dctl >> 16) & 0x7F;
    let wbal = n.r(tx_base(q as u32) + Q_WBAL);
    let head_wb = wbal & 1 != 0;
    for (k, d) in descs.iter().enumerate() {
        let rs = d.cmd & TX_CMD_RS != 0;
        if !head_wb && (rs || wthresh > 0) {
            let di = (qs.head + k as u32) % len;
            if let Err(f) = core.dma.write_u32(base + 16 * u64::from(di) + 12, 1) {
                core.dma_fault(i, &format!("TX queue {q} write-back"), f);
            }
        }
    }
    n.tx[q].head = idx;
    // A descriptor (RS) or head write-back is the queue's interrupt cause (§7.2.3.5, §7.3.4).
    if head_wb || wthresh > 0 || any_rs {
        n.queue_cause(true, q);
    }
    if head_wb {
        let wb = u64::from(n.r(tx_base(q as u32) + Q_WBAH)) << 32 | u64::from(wbal & !3);
        if let Err(f) = core.dma.write_u32(wb, idx) {
            core.dma_fault(i, &format!("TX queue {q} head write-back"), f);
        }
    }
    if bad {
        n.wire.tx_bad += 1;
        return TxStep::Dropped;
    }
    if let Some((cmd, sta)) = offload {
        let (ixsm, txsm) = (sta & (1 << 8) != 0, sta & (1 << 9) != 0);
        let vle = cmd & (1 << 30) != 0;
        let idx = ((sta >> 4) & 7) as usize;
        let ctx = if ixsm || txsm || vle {
            n.tx[q].ctx.get(idx).copied().unwrap_or_default()
        } else {
            Default::default()
        };
        if ixsm || txsm {
            if let Err(why) = offload::insert_checksums(scratch, &ctx, ixsm, txsm) {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!("TX queue {q}: checksum offload: {why}"),
                );
            }
        }
        if vle {
            let vt = (n.r(DMATXCTL) >> 16) as u16;
            if let Err(why) = offload::insert_vlan(scratch, &ctx, vt) {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!("TX queue {q}: VLAN insertion: {why}"),
                );
            }
        }
    }
    let max = tx_max_packet(n);
    if scratch.len() + 4 > max && n.once.insert((ViolationKind::TxDataLength, q as u32)) {
        core.violate(
            i,
            ViolationKind::TxDataLength,
            format!(
                "TX queue {q}: packet of {} bytes with CRC; the packet buffer leaves room for {max} (TXPBSIZE − TXPBTHRESH)",
                scratch.len() + 4
            ),
        );
    }
    if n.r(HLREG0) & HLREG0_TXPADEN != 0 && scratch.len() < 60 {
        scratch.resize(60, 0);
    }
    let flen = scratch.len();
    let wlen = flen as u32 + 4;
    // Statistics into the accumulators (`nic::st`), folded before software reads them.
    let w = u64::from(wlen);
    n.acc_packets += 1;
    if wlen >= 64 {
        n.acc[st::GPTC] += 1;
        n.acc[st::GOTCL] += w;
    }
    n.acc[st::TPT] += 1;
    n.acc[st::PTC64 + size_bucket(wlen) as usize] += 1;
    // A broadcast address is a multicast one too (bit 0 of its first byte).
    if flen >= 6 && scratch[0] & 1 != 0 {
        if scratch[..6] == [0xFF; 6] {
            n.acc[st::BPTC] += 1;
        } else {
            n.acc[st::MPTC] += 1;
        }
    }
    let slot = n.stat_slot(TQSM, q) as usize;
    n.acc[st::QPTC + slot] += 1;
    n.acc[st::QBTC + slot] += w;
    n.acc[st::TXDGPC] += 1;
    n.acc[st::TXDGBCL] += w;
    n.wire.tx_frames += 1;
    n.wire.tx_bytes += flen as u64;
    TxStep::Frame
}

pub(crate) fn size_bucket(wlen: u32) -> u32 {
    match wlen {
        0..=64 => 0,
        65..=127 => 1,
        128..=255 => 2,
        256..=511 => 3,
        512..=1023 => 4,
        _ => 5,
    }
}
