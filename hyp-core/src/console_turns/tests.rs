//! The console's turns: who may print, who waits, who goes first; and on
//! real threads, that two partitions never print at once and a waiting one
//! gets its turn.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::vec::Vec;

use super::ConsoleTurns;

#[test]
fn a_free_console_is_taken_and_given_back() {
    let turns = ConsoleTurns::new();
    assert!(turns.begin(Some(0)));
    assert!(!turns.begin(Some(1)), "taken");
    turns.end();
    assert!(turns.begin(Some(1)), "free again");
}

#[test]
fn a_partition_that_found_the_console_taken_goes_first() {
    let turns = ConsoleTurns::new();
    assert!(turns.begin(Some(0)));
    assert!(!turns.begin(Some(1)), "1 finds 0 printing: it waits");
    turns.end();
    // 0 prints without pause, but 1 was waiting: 1 goes first.
    assert!(!turns.begin(Some(0)), "0 may not jump ahead of 1");
    assert!(!turns.begin(Some(2)), "nor may 2");
    assert!(turns.begin(Some(1)), "1's turn");
    turns.end();
    // 0 and 2 found 1's turn coming: both waited, either goes now.
    assert!(turns.begin(Some(2)));
    turns.end();
    assert!(turns.begin(Some(0)));
    turns.end();
    // Nobody waits any more: anyone may print.
    assert!(turns.begin(Some(3)));
}

#[test]
fn a_sibling_vcpu_printing_the_same_partition_takes_no_turn() {
    let turns = ConsoleTurns::new();
    assert!(turns.begin(Some(4)));
    assert!(!turns.begin(Some(4)), "its sibling is printing");
    turns.end();
    // 4 was not marked waiting: 5 is not held back by it.
    assert!(turns.begin(Some(5)));
}

#[test]
fn partitions_beyond_the_waiting_bits_print_but_never_wait() {
    let turns = ConsoleTurns::new();
    assert!(turns.begin(Some(64)));
    assert!(!turns.begin(Some(64)), "the same partition");
    assert!(!turns.begin(None));
    turns.end();
    assert!(turns.begin(Some(0)), "nobody was marked waiting");
    turns.end();
    assert!(turns.begin(None));
}

#[test]
fn two_partitions_never_print_at_once_and_each_gets_turns() {
    const PARTITIONS: usize = 4;
    const TRIES: usize = 20_000;
    let turns = Arc::new(ConsoleTurns::new());
    let printing = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(PARTITIONS));
    let workers: Vec<_> = (0..PARTITIONS)
        .map(|index| {
            let (turns, printing, barrier) = (
                Arc::clone(&turns),
                Arc::clone(&printing),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                let turns_had = AtomicUsize::new(0);
                barrier.wait();
                for _ in 0..TRIES {
                    if turns.begin(Some(index)) {
                        assert!(
                            !printing.swap(true, Ordering::AcqRel),
                            "partition {index} printing beside another"
                        );
                        turns_had.fetch_add(1, Ordering::Relaxed);
                        printing.store(false, Ordering::Release);
                        turns.end();
                    } else {
                        thread::yield_now();
                    }
                }
                turns_had.load(Ordering::Relaxed)
            })
        })
        .collect();
    let had: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    // Whoever found the console taken went first next: nobody starved.
    assert!(had.iter().all(|&turns| turns > 0), "{had:?}");
}
