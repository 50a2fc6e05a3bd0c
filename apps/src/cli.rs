//! Command-line arguments shared by the programs.

use std::fmt;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use platform_linux::PciAddress;

/// Largest batch the programs use (the size of their fixed packet vectors).
pub const MAX_BATCH: usize = 256;

/// A device named on the command line: a PCI address, or `sim` for a simulated 82599.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevSpec {
    /// A simulated 82599 cabled to a simulated peer.
    Sim,
    /// A real device.
    Pci(PciAddress),
}

impl FromStr for DevSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("sim") {
            return Ok(DevSpec::Sim);
        }
        s.parse::<PciAddress>()
            .map(DevSpec::Pci)
            .map_err(|e| e.to_string())
    }
}

impl fmt::Display for DevSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevSpec::Sim => f.write_str("sim"),
            DevSpec::Pci(addr) => write!(f, "{addr}"),
        }
    }
}

/// How the simulator's virtual clock moves in sim mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SimClock {
    /// Virtual time follows wall-clock time.
    #[default]
    Wall,
    /// Every loop iteration advances virtual time by the wire time of one batch at line rate:
    /// runs with `--packets` become fully deterministic.
    Virtual,
}

/// Options every program takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Stop after this many seconds (virtual seconds with --sim-clock virtual).
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: Option<f64>,
    /// Stop after this many packets (forwarded, sent or captured).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub packets: Option<u64>,
    /// Packets per receive/transmit call.
    #[arg(long, default_value_t = 32, value_parser = parse_batch)]
    pub batch: usize,
    /// Queues per device. ixgbe-fwd and ixgbe-pktgen run one thread per queue when there are
    /// several; ixgbe-pcap polls them all from one thread (one writer for the file).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub queues: u16,
    /// JSON Lines on stdout: one object per second and a summary object as the last line
    /// (human lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Sim mode only: how virtual time advances.
    #[arg(long, value_enum, default_value_t = SimClock::Wall)]
    pub sim_clock: SimClock,
}

impl CommonArgs {
    /// Applies the output options: with `--json`, stdout carries JSON Lines of `program`.
    pub fn configure_output(&self, program: &'static str) {
        if self.json {
            crate::json::enable(program);
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err("seconds must be a positive number".into())
    }
}

fn parse_batch(s: &str) -> Result<usize, String> {
    let v: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if (1..=MAX_BATCH).contains(&v) {
        Ok(v)
    } else {
        Err(format!("the batch size must be from 1 to {MAX_BATCH}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_spec_parses_sim_and_pci() {
        assert_eq!("sim".parse::<DevSpec>(), Ok(DevSpec::Sim));
        assert_eq!("SIM".parse::<DevSpec>(), Ok(DevSpec::Sim));
        let DevSpec::Pci(a) = "0000:03:00.1".parse::<DevSpec>().unwrap() else {
            panic!("expected a PCI address");
        };
        assert_eq!((a.domain, a.bus, a.device, a.function), (0, 3, 0, 1));
        assert!("03:00.0".parse::<DevSpec>().is_ok());
        assert!("0000:03:40.0".parse::<DevSpec>().is_err());
        assert!("eth0".parse::<DevSpec>().is_err());
    }

    #[test]
    fn batch_and_seconds_ranges() {
        assert_eq!(parse_batch("1"), Ok(1));
        assert_eq!(parse_batch("256"), Ok(256));
        assert!(parse_batch("0").is_err());
        assert!(parse_batch("257").is_err());
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("nan").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
    }
}
