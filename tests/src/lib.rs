//! Integration tests across crates live in `tests/tests/`; this library holds what several of
//! them share.

pub mod frames;
pub mod on_sim;
