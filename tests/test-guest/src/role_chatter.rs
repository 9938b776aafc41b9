//! Role `chatter`: prints [`LINES`] numbered lines as fast as its UART takes
//! them, then powers its partition off. Two partitions doing it at once make
//! their vCPUs find the console taken by the other over and over: the
//! scenario checks that every line of both still reaches the console.

use tessera_guest_kit::println;
use tessera_guest_kit::psci::Psci;

/// Lines each partition prints: about 30 KiB, thirty times its buffer.
pub const LINES: u32 = 1000;

pub fn run() -> ! {
    for line in 0..LINES {
        println!("chatter: line {line} of {LINES}");
    }
    println!("chatter: done");
    Psci::HVC.system_off()
}
