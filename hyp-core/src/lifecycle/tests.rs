//! The lifecycle's decisions, on a fake machine, and its races on real
//! threads: each race runs many rounds, and every round must end with
//! exactly one winner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::vec::Vec;

use super::{Finish, Lifecycle, Machine, Power, State, Stopping};
use crate::config::RestartPolicy;
use crate::guest::smccc::{AffinityState, PsciReturn};

/// CPU n has MPIDR 0x100 + n, so that vCPU indices and MPIDRs differ.
const fn mpidr(cpu: usize) -> u64 {
    0x100 + cpu as u64
}

/// A machine that records what the lifecycle asked of it.
#[derive(Default)]
struct FakeMachine {
    this_cpu: u64,
    kicks: Mutex<Vec<u64>>,
    events: AtomicUsize,
}

impl FakeMachine {
    fn on_cpu(cpu: usize) -> FakeMachine {
        FakeMachine {
            this_cpu: mpidr(cpu),
            ..FakeMachine::default()
        }
    }

    fn kicks(&self) -> Vec<u64> {
        self.kicks.lock().unwrap().clone()
    }
}

impl Machine for FakeMachine {
    fn this_cpu(&self) -> u64 {
        self.this_cpu
    }

    fn kick(&self, mpidr: u64) {
        self.kicks.lock().unwrap().push(mpidr);
    }

    fn send_event(&self) {
        self.events.fetch_add(1, Ordering::SeqCst);
    }
}

fn lifecycle(vcpus: usize, policy: RestartPolicy) -> Lifecycle {
    Lifecycle::new((0..vcpus).map(mpidr), policy)
}

/// A partition started with vCPU 0 on, as a CPU finds it pending.
fn running(vcpus: usize, policy: RestartPolicy) -> Lifecycle {
    let partition = lifecycle(vcpus, policy);
    partition.loaded(0x4008_0000, 0x4800_0000, &FakeMachine::on_cpu(0));
    assert_eq!(
        partition.entry_if_running(0),
        Some((0x4008_0000, 0x4800_0000))
    );
    partition.mark_on(0);
    partition
}

#[test]
fn a_new_partition_is_loading_with_every_vcpu_off() {
    let partition = lifecycle(3, RestartPolicy::OnRequest);
    assert_eq!(partition.state(), State::Loading);
    for vcpu in 0..3 {
        assert_eq!(partition.power(vcpu), Some(Power::Off));
        assert_eq!(partition.physical_mpidr(vcpu), Some(mpidr(vcpu)));
    }
    assert_eq!(partition.power(3), None);
    assert_eq!(partition.vcpu_on_cpu(mpidr(2)), Some(2));
    assert_eq!(partition.vcpu_on_cpu(mpidr(3)), None);
}

#[test]
fn starting_turns_vcpu_0_on_and_kicks_its_cpu() {
    let partition = lifecycle(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(1);
    partition.loaded(0x1000, 0x2000, &machine);
    assert_eq!(partition.state(), State::Running);
    assert_eq!(partition.power(0), Some(Power::OnPending));
    assert_eq!(partition.power(1), Some(Power::Off));
    assert_eq!(partition.entry_if_running(0), Some((0x1000, 0x2000)));
    assert_eq!(machine.kicks(), [mpidr(0)]);
    assert!(machine.events.load(Ordering::SeqCst) > 0);
    // Restarted by its own CPU (vCPU 0's was the last to leave): no kick.
    let partition = lifecycle(2, RestartPolicy::OnRequest);
    let own = FakeMachine::on_cpu(0);
    partition.loaded(0x1000, 0x2000, &own);
    assert!(own.kicks().is_empty());
    assert_eq!(partition.power(0), Some(Power::OnPending));
}

#[test]
fn cpu_on_kicks_the_target_cpu_but_not_its_own() {
    let partition = running(3, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    assert_eq!(partition.cpu_on(2, 0x1000, 7, &machine), Ok(()));
    assert_eq!(machine.kicks(), [mpidr(2)]);
    assert_eq!(partition.entry_if_running(2), Some((0x1000, 7)));

    // vCPU 1's own CPU turning it on (as a restart's vCPU 0 does).
    let own = FakeMachine::on_cpu(1);
    assert_eq!(partition.cpu_on(1, 0x1000, 0, &own), Ok(()));
    assert!(own.kicks().is_empty());
}

#[test]
fn psci_cpu_on_answers_as_psci_says() {
    let partition = running(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    let cpu_on = |target, in_ram| partition.psci_cpu_on(target, 0x1000, 0, in_ram, &machine);
    assert_eq!(cpu_on(2, true), PsciReturn::InvalidParameters, "no vCPU 2");
    assert_eq!(cpu_on(u64::MAX, true), PsciReturn::InvalidParameters);
    assert_eq!(cpu_on(1, false), PsciReturn::InvalidAddress);
    assert_eq!(
        partition.power(1),
        Some(Power::Off),
        "a refused CPU_ON changes nothing"
    );
    assert_eq!(cpu_on(0, true), PsciReturn::AlreadyOn);
    assert_eq!(cpu_on(1, true), PsciReturn::Success);
    assert_eq!(cpu_on(1, true), PsciReturn::OnPending);
    assert_eq!(partition.entry_if_running(1), Some((0x1000, 0)));
    partition.mark_on(1);
    assert_eq!(cpu_on(1, true), PsciReturn::AlreadyOn);
    // MPIDR bits above the affinity fields are ignored.
    assert_eq!(cpu_on(1 | (1 << 31), true), PsciReturn::AlreadyOn);
}

#[test]
fn affinity_info_follows_each_power_state() {
    let partition = running(2, RestartPolicy::OnRequest);
    let info = |target, level| partition.psci_affinity_info(target, level);
    assert_eq!(info(0, 0), AffinityState::On as u64);
    assert_eq!(info(1, 0), AffinityState::Off as u64);
    assert_eq!(
        info(0, 1),
        PsciReturn::InvalidParameters.value(),
        "levels above 0"
    );
    assert_eq!(info(2, 0), PsciReturn::InvalidParameters.value());
    partition.cpu_on(1, 0, 0, &FakeMachine::on_cpu(0)).unwrap();
    assert_eq!(info(1, 0), AffinityState::OnPending as u64);
}

#[test]
fn cpu_off_of_one_vcpu_of_two_finishes_nothing() {
    let partition = running(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    partition.cpu_on(1, 0, 0, &machine).unwrap();
    partition.mark_on(1);
    assert_eq!(partition.power_off(1, Power::On, &machine), Finish::Nothing);
    assert_eq!(partition.state(), State::Running);
    assert_eq!(partition.power(1), Some(Power::Off));
}

#[test]
fn the_last_cpu_off_stops_the_partition_or_restarts_it_by_policy() {
    for (policy, finish, state) in [
        (
            RestartPolicy::OnRequest,
            Finish::Stop { all_off: true },
            State::Stopped,
        ),
        (
            RestartPolicy::Never,
            Finish::Stop { all_off: true },
            State::Stopped,
        ),
        (
            RestartPolicy::Always,
            Finish::Restart { all_off: true },
            State::Loading,
        ),
    ] {
        let partition = running(1, policy);
        let machine = FakeMachine::on_cpu(0);
        assert_eq!(
            partition.power_off(0, Power::On, &machine),
            finish,
            "{policy:?}"
        );
        assert_eq!(partition.state(), state, "{policy:?}");
    }
}

#[test]
fn system_off_and_reset_follow_the_restart_policy() {
    for (policy, restart, stopping) in [
        (RestartPolicy::OnRequest, false, Stopping::Stop),
        (RestartPolicy::OnRequest, true, Stopping::Restart),
        (RestartPolicy::Always, false, Stopping::Restart),
        (RestartPolicy::Always, true, Stopping::Restart),
        (RestartPolicy::Never, false, Stopping::Stop),
        (RestartPolicy::Never, true, Stopping::Stop),
    ] {
        let partition = running(1, policy);
        let machine = FakeMachine::on_cpu(0);
        assert_eq!(
            partition.request_stop(restart, &machine, |_| {}),
            Some(stopping)
        );
        let finish = partition.power_off(0, Power::On, &machine);
        let expected = match stopping {
            Stopping::Stop => Finish::Stop { all_off: false },
            Stopping::Restart => Finish::Restart { all_off: false },
        };
        assert_eq!(finish, expected, "{policy:?}, restart {restart}");
    }
}

#[test]
fn a_stop_request_kicks_every_other_vcpu_once_and_only_the_first_counts() {
    let partition = running(3, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(1);
    let mut announced = None;
    let stopping = partition.request_stop(false, &machine, |stopping| {
        // Announced before any other vCPU is kicked.
        assert!(machine.kicks().is_empty());
        announced = Some(stopping);
    });
    assert_eq!(stopping, Some(Stopping::Stop));
    assert_eq!(announced, Some(Stopping::Stop));
    let mut kicks = machine.kicks();
    kicks.sort_unstable();
    assert_eq!(kicks, [mpidr(0), mpidr(2)], "not its own CPU");
    // A second request (SYSTEM_RESET from another vCPU) changes nothing.
    let other = FakeMachine::on_cpu(2);
    assert_eq!(
        partition.request_stop(true, &other, |_| panic!("nothing changed to announce")),
        None
    );
    assert!(other.kicks().is_empty());
    assert_eq!(partition.state(), State::Stopping);
}

#[test]
fn a_vcpu_turned_on_while_its_partition_stops_never_runs_and_is_counted() {
    let partition = running(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    partition.cpu_on(1, 0x1000, 0, &machine).unwrap();
    partition.request_stop(false, &machine, |_| {}).unwrap();
    assert_eq!(partition.entry_if_running(1), None, "it must not start");
    assert_eq!(partition.power_off(0, Power::On, &machine), Finish::Nothing);
    // Its CPU turns it off again: the last one, so it finishes the stop.
    assert_eq!(
        partition.power_off(1, Power::OnPending, &FakeMachine::on_cpu(1)),
        Finish::Stop { all_off: false }
    );
}

#[test]
fn turning_off_from_the_wrong_state_changes_nothing() {
    let partition = running(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    assert_eq!(
        partition.power_off(1, Power::On, &machine),
        Finish::Nothing,
        "it is off"
    );
    assert_eq!(
        partition.power_off(0, Power::OnPending, &machine),
        Finish::Nothing,
        "it is on"
    );
    assert_eq!(
        partition.power_off(9, Power::On, &machine),
        Finish::Nothing,
        "no such vCPU"
    );
    assert_eq!(partition.power(0), Some(Power::On));
    // The count was not disturbed: the real CPU_OFF still finishes.
    assert_eq!(
        partition.power_off(0, Power::On, &machine),
        Finish::Stop { all_off: true }
    );
}

#[test]
fn a_restarted_partition_runs_again_from_vcpu_0() {
    let partition = running(2, RestartPolicy::OnRequest);
    let machine = FakeMachine::on_cpu(0);
    partition.request_stop(true, &machine, |_| {}).unwrap();
    assert_eq!(
        partition.power_off(0, Power::On, &machine),
        Finish::Restart { all_off: false }
    );
    partition.loaded(0x2000, 0x3000, &machine);
    assert_eq!(partition.state(), State::Running);
    assert_eq!(partition.entry_if_running(0), Some((0x2000, 0x3000)));
    assert_eq!(partition.power(1), Some(Power::Off));
}

#[test]
fn a_partition_that_fails_to_load_is_stopped() {
    let partition = lifecycle(1, RestartPolicy::Always);
    partition.failed_to_load();
    assert_eq!(partition.state(), State::Stopped);
    assert_eq!(
        partition.request_stop(true, &FakeMachine::on_cpu(0), |_| {}),
        None
    );
}

/// How many times each race is run.
const ROUNDS: usize = 200;

#[test]
fn of_racing_cpu_ons_exactly_one_wins_and_its_entry_point_stays() {
    const CALLERS: usize = 4;
    for _ in 0..ROUNDS {
        let partition = Arc::new(running(2, RestartPolicy::OnRequest));
        let barrier = Arc::new(Barrier::new(CALLERS));
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (partition, barrier) = (Arc::clone(&partition), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    let entry = 0x1000 * (caller as u64 + 1);
                    let answer = partition.psci_cpu_on(
                        1,
                        entry,
                        caller as u64,
                        true,
                        &FakeMachine::on_cpu(0),
                    );
                    (answer, entry, caller as u64)
                })
            })
            .collect();
        let answers: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let winners: Vec<_> = answers
            .iter()
            .filter(|(answer, ..)| *answer == PsciReturn::Success)
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        for (answer, ..) in &answers {
            assert!(
                matches!(answer, PsciReturn::Success | PsciReturn::OnPending),
                "{answers:?}"
            );
        }
        let &&(_, entry, context) = winners.first().unwrap();
        assert_eq!(partition.entry_if_running(1), Some((entry, context)));
    }
}

#[test]
fn of_vcpus_leaving_at_once_exactly_one_finishes_the_restart() {
    const VCPUS: usize = 4;
    for _ in 0..ROUNDS {
        let partition = Arc::new(running(VCPUS, RestartPolicy::OnRequest));
        for vcpu in 1..VCPUS {
            partition
                .cpu_on(vcpu, 0, 0, &FakeMachine::on_cpu(0))
                .unwrap();
            partition.mark_on(vcpu);
        }
        let barrier = Arc::new(Barrier::new(VCPUS));
        let leaving: Vec<_> = (0..VCPUS)
            .map(|vcpu| {
                let (partition, barrier) = (Arc::clone(&partition), Arc::clone(&barrier));
                thread::spawn(move || {
                    let machine = FakeMachine::on_cpu(vcpu);
                    barrier.wait();
                    // Every vCPU calls SYSTEM_RESET at once, then leaves.
                    let requested = partition.request_stop(true, &machine, |_| {}).is_some();
                    (requested, partition.power_off(vcpu, Power::On, &machine))
                })
            })
            .collect();
        let results: Vec<_> = leaving.into_iter().map(|l| l.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|(requested, _)| *requested).count(),
            1,
            "{results:?}"
        );
        let finishes: Vec<_> = results
            .iter()
            .map(|&(_, finish)| finish)
            .filter(|&finish| finish != Finish::Nothing)
            .collect();
        assert_eq!(
            finishes,
            [Finish::Restart { all_off: false }],
            "{results:?}"
        );
        assert_eq!(partition.state(), State::Loading);
    }
}

#[test]
fn a_cpu_on_racing_the_last_cpu_off_never_loses_the_partition() {
    // vCPU 0 calls CPU_OFF while vCPU 1, about to turn off too, turns
    // vCPU 0 back on... or not: either the partition stops with every vCPU
    // off, or it runs on with the count right; never stopped with a vCPU on.
    for _ in 0..ROUNDS {
        let partition = Arc::new(running(2, RestartPolicy::OnRequest));
        partition.cpu_on(1, 0, 0, &FakeMachine::on_cpu(0)).unwrap();
        partition.mark_on(1);
        let barrier = Arc::new(Barrier::new(2));
        let off = {
            let (partition, barrier) = (Arc::clone(&partition), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                partition.power_off(0, Power::On, &FakeMachine::on_cpu(0))
            })
        };
        let machine = FakeMachine::on_cpu(1);
        barrier.wait();
        let turned_on = partition.cpu_on(0, 0x1000, 0, &machine).is_ok();
        let first = off.join().unwrap();
        let last = partition.power_off(1, Power::On, &machine);
        assert_eq!(first, Finish::Nothing);
        if turned_on {
            assert_eq!(last, Finish::Nothing, "vCPU 0 is pending: not the last");
            assert_eq!(partition.state(), State::Running);
            assert_eq!(partition.power(0), Some(Power::OnPending));
        } else {
            assert_eq!(last, Finish::Stop { all_off: true });
            assert_eq!(partition.state(), State::Stopped);
        }
    }
}
