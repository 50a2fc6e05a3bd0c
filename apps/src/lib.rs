//! The ixgbe apps (work in progress).
