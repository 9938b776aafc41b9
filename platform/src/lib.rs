//! Board support (placeholder while hyp-core is brought up).
#![no_std]
