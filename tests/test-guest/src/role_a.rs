//! Role `a`: PSCI 1.1 and SMCCC 1.1 as `docs/partitions.md` promises them,
//! a second vCPU started and stopped, and all of the free RAM.
//!
//! Every call goes through [`smccc::try_call`], so an implementation that
//! answers a call with an exception (QEMU without EL2 for a non-PSCI `HVC`,
//! or any `SMC`) fails that one case and the run goes on.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tessera_guest_kit::cpu::{self, secondary_entry_point};
use tessera_guest_kit::psci::{
    self, AFFINITY_INFO_64, AFFINITY_OFF, CPU_ON_64, CPU_SUSPEND_64, MIGRATE_INFO_TYPE,
    MIGRATE_NOT_REQUIRED, PSCI_FEATURES, PSCI_VERSION, Psci, PsciError, Raw, SYSTEM_OFF,
};
use tessera_guest_kit::report::{self, Failure, Outcome};
use tessera_guest_kit::smccc::{
    self, Conduit, NOT_SUPPORTED, SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_2, SMCCC_VERSION,
    TESSERA_FEATURES, TESSERA_NULL, TESSERA_UID, VENDOR_HYP_CALL_COUNT, signed,
};
use tessera_guest_kit::{ensure, fail, println, time};

use crate::context::{BootCount, Context, ram_round};

/// The second vCPU, as the guest DTB numbers it.
const SECONDARY_MPIDR: u64 = 1;
/// A guest address below every partition's RAM (which starts at 0x4000_0000).
const ENTRY_OUTSIDE_RAM: u64 = 0x1000;
/// An MPIDR that no partition of the scenarios has.
const ABSENT_MPIDR: u64 = 7;
/// What the boot vCPU passes to CPU_ON and the secondary must see in x0.
const CONTEXT_ID: u64 = 0x7e55_e4a0_c0de_0001;
/// A PSCI function ID that PSCI 1.1 does not define.
const UNKNOWN_PSCI_FUNCTION: u32 = 0x8400_00ff;
/// An Arm Architecture Service function ID that SMCCC does not define.
const UNKNOWN_ARCH_FUNCTION: u32 = 0x8000_1234;
/// An OEM Service call (owner 3): Tessera implements none.
const UNKNOWN_FUNCTION: u32 = 0x8300_abcd;
/// CPU_SUSPEND's `power_state` for a standby (not power-down) state at
/// level 0 with state ID 0, in the original format (DEN 0022 §5.4.2).
const STANDBY: u32 = 0;
/// How long to wait for the other vCPU at each step.
const WAIT_MS: u64 = 2000;

/// What the secondary vCPU has done, in shared memory (BSS: outside the RAM
/// test, and uncached like everything with the MMU off).
const STAGE_NOT_STARTED: u32 = 0;
/// It runs, has recorded its context id, and waits to be released.
const STAGE_PARKED: u32 = 1;
/// CPU_OFF returned (an error): the result is in `CPU_OFF_RESULT`.
const STAGE_CPU_OFF_FAILED: u32 = 2;

static STAGE: AtomicU32 = AtomicU32::new(STAGE_NOT_STARTED);
static SEEN_CONTEXT_ID: AtomicU64 = AtomicU64::new(0);
static SEEN_VCPU: AtomicU64 = AtomicU64::new(u64::MAX);
static RELEASE: AtomicBool = AtomicBool::new(false);
static CPU_OFF_RESULT: AtomicU64 = AtomicU64::new(0);

/// The secondary vCPU: records what it received, waits to be released
/// (while the boot vCPU checks CPU_ON's ALREADY_ON), then turns itself off.
pub fn secondary_main(vcpu: usize, context_id: u64) -> ! {
    SEEN_CONTEXT_ID.store(context_id, Ordering::SeqCst);
    SEEN_VCPU.store(vcpu as u64, Ordering::SeqCst);
    STAGE.store(STAGE_PARKED, Ordering::SeqCst);
    cpu::send_event();
    // Released by the boot vCPU; after the timeout, off anyway.
    time::wait_until(2 * WAIT_MS, || RELEASE.load(Ordering::SeqCst));
    let raw = Psci::HVC.cpu_off();
    CPU_OFF_RESULT.store(raw, Ordering::SeqCst);
    STAGE.store(STAGE_CPU_OFF_FAILED, Ordering::SeqCst);
    cpu::send_event();
    cpu::park()
}

/// Makes an SMCCC call; an exception from the conduit becomes a failure.
fn call(conduit: Conduit, function: u32, arguments: [u64; 3]) -> Result<[u64; 4], Failure> {
    smccc::try_call(conduit, function, arguments).map_err(|trap| {
        Failure::new(format_args!(
            "{} of function {function:#x} raised {trap}",
            conduit.name()
        ))
    })
}

/// An HVC call's x0.
fn hvc(function: u32, arguments: [u64; 3]) -> Result<u64, Failure> {
    Ok(call(Conduit::Hvc, function, arguments)?[0])
}

pub fn run(context: &Context) -> ! {
    report::begin("a");
    println!("a: boot {}", BootCount(context.boot_count));

    report::case("psci_version", || {
        let version = hvc(PSCI_VERSION, [0; 3])?;
        ensure!(
            psci::decode(version) == Ok(psci::VERSION_1_1),
            "PSCI_VERSION returned {}, expected 1.1 ({:#x})",
            Raw(version),
            psci::VERSION_1_1
        );
        Ok(())
    });
    report::case("psci_features_cpu_on", || {
        let raw = hvc(PSCI_FEATURES, [u64::from(CPU_ON_64), 0, 0])?;
        ensure!(
            signed(raw) == 0,
            "PSCI_FEATURES(CPU_ON_64) returned {}, expected 0 (supported, no flags)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("psci_features_unknown", || {
        let raw = hvc(PSCI_FEATURES, [u64::from(UNKNOWN_PSCI_FUNCTION), 0, 0])?;
        ensure!(
            signed(raw) == PsciError::NotSupported.code(),
            "PSCI_FEATURES({UNKNOWN_PSCI_FUNCTION:#x}) returned {}, expected NOT_SUPPORTED",
            Raw(raw)
        );
        Ok(())
    });
    report::case("migrate_info_type", || {
        let raw = hvc(MIGRATE_INFO_TYPE, [0; 3])?;
        ensure!(
            signed(raw) == MIGRATE_NOT_REQUIRED,
            "MIGRATE_INFO_TYPE returned {}, expected 2 (no migration needed)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("smccc_version", || {
        let raw = hvc(SMCCC_VERSION, [0; 3])?;
        ensure!(
            psci::decode(raw).is_ok_and(|version| version >= smccc::VERSION_1_1),
            "SMCCC_VERSION returned {}, expected 1.1 ({:#x}) or later",
            Raw(raw),
            smccc::VERSION_1_1
        );
        Ok(())
    });
    report::case("arch_features_workaround_2", || {
        let raw = hvc(
            SMCCC_ARCH_FEATURES,
            [u64::from(SMCCC_ARCH_WORKAROUND_2), 0, 0],
        )?;
        // 0 would mean "call SMCCC_ARCH_WORKAROUND_2 to enable the
        // mitigation", which Tessera does not implement (DEN 0028 §7.5.2).
        ensure!(
            signed(raw) != 0,
            "SMCCC_ARCH_FEATURES(SMCCC_ARCH_WORKAROUND_2) returned 0 (supported), which Tessera must not claim"
        );
        Ok(())
    });
    report::case("arch_features_unknown", || {
        let raw = hvc(
            SMCCC_ARCH_FEATURES,
            [u64::from(UNKNOWN_ARCH_FUNCTION), 0, 0],
        )?;
        ensure!(
            signed(raw) == NOT_SUPPORTED,
            "SMCCC_ARCH_FEATURES({UNKNOWN_ARCH_FUNCTION:#x}) returned {}, expected NOT_SUPPORTED (-1)",
            Raw(raw)
        );
        Ok(())
    });
    let mut under_tessera = false;
    report::case("hypervisor_uid", || {
        let uid = smccc::hypervisor_uid(Conduit::Hvc)
            .map_err(|trap| Failure::new(format_args!("VENDOR_HYP_CALL_UID raised {trap}")))?;
        under_tessera = uid == TESSERA_UID;
        ensure!(
            under_tessera,
            "VENDOR_HYP_CALL_UID returned w0..w3 = {:#010x} {:#010x} {:#010x} {:#010x}, expected {:#010x} {:#010x} {:#010x} {:#010x}",
            uid[0],
            uid[1],
            uid[2],
            uid[3],
            TESSERA_UID[0],
            TESSERA_UID[1],
            TESSERA_UID[2],
            TESSERA_UID[3]
        );
        Ok(())
    });
    report::case("boot_seeds", || {
        // Tessera gives every boot /chosen/rng-seed (32 bytes) and
        // kaslr-seed (8), from RNDR or the board's own seed.
        let seed = |name: &str| context.fdt.property("/chosen", name).ok().flatten();
        let Some(rng) = seed("rng-seed") else {
            fail!("/chosen/rng-seed is missing");
        };
        ensure!(
            rng.len() == 32 && rng.iter().any(|&b| b != 0),
            "/chosen/rng-seed is {} bytes and must be 32, not all zero",
            rng.len()
        );
        let Some(kaslr) = seed("kaslr-seed") else {
            fail!("/chosen/kaslr-seed is missing");
        };
        ensure!(
            kaslr.len() == 8 && kaslr.iter().any(|&b| b != 0),
            "/chosen/kaslr-seed is {} bytes and must be 8, not all zero",
            kaslr.len()
        );
        Ok(())
    });
    report::case("tessera_null_call", || {
        for conduit in [Conduit::Hvc, Conduit::Smc] {
            let raw = call(conduit, TESSERA_NULL, [1, 2, 3])?[0];
            ensure!(
                raw == 0,
                "Tessera's null call over {} returned {}, expected 0",
                conduit.name(),
                Raw(raw)
            );
        }
        let count = hvc(VENDOR_HYP_CALL_COUNT, [0; 3])?;
        ensure!(
            count == 4,
            "VENDOR_HYP_CALL_COUNT returned {}, expected 4 (count, UID, revision, null)",
            Raw(count)
        );
        Ok(())
    });
    report::case("unknown_tessera_function", || {
        // Tessera's own range answers the same on the fast path (HVC) as
        // on the slow one (SMC).
        for function in [TESSERA_FEATURES, TESSERA_NULL + 1, 0x8600_fe00] {
            for conduit in [Conduit::Hvc, Conduit::Smc] {
                let raw = call(conduit, function, [1, 2, 3])?[0];
                ensure!(
                    signed(raw) == NOT_SUPPORTED,
                    "{} of Tessera's unimplemented function {function:#x} returned {}, expected NOT_SUPPORTED (-1)",
                    conduit.name(),
                    Raw(raw)
                );
            }
        }
        Ok(())
    });
    report::case("unknown_hvc_function", || {
        let raw = hvc(UNKNOWN_FUNCTION, [1, 2, 3])?;
        ensure!(
            signed(raw) == NOT_SUPPORTED,
            "HVC of unknown function {UNKNOWN_FUNCTION:#x} returned {}, expected NOT_SUPPORTED (-1)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("hvc_preserves_x4_x17", || preserves_registers(Conduit::Hvc));
    report::case("smc_preserves_x4_x17", || preserves_registers(Conduit::Smc));

    let started = report::case("cpu_on_secondary", cpu_on_secondary);
    report::case("cpu_on_already_on", || {
        ensure!(
            started,
            "vCPU 1 did not start (see cpu_on_secondary): nothing to check"
        );
        let raw = hvc(
            CPU_ON_64,
            [SECONDARY_MPIDR, secondary_entry_point(), CONTEXT_ID],
        )?;
        ensure!(
            psci::decode(raw) == Err(PsciError::AlreadyOn),
            "CPU_ON of running vCPU 1 returned {}, expected ALREADY_ON (-4)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("cpu_off_affinity_info", || cpu_off_affinity_info(started));
    report::case("cpu_on_invalid_mpidr", || {
        let raw = hvc(CPU_ON_64, [ABSENT_MPIDR, secondary_entry_point(), 0])?;
        ensure!(
            psci::decode(raw) == Err(PsciError::InvalidParameters),
            "CPU_ON of MPIDR {ABSENT_MPIDR:#x} (not in the partition) returned {}, expected INVALID_PARAMETERS (-2)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("cpu_on_entry_outside_ram", || {
        // vCPU 1 is off again (cpu_off_affinity_info); an entry point
        // outside the partition's RAM must be refused, not jumped to.
        let raw = hvc(CPU_ON_64, [SECONDARY_MPIDR, ENTRY_OUTSIDE_RAM, 0])?;
        ensure!(
            psci::decode(raw) == Err(PsciError::InvalidAddress),
            "CPU_ON with entry {ENTRY_OUTSIDE_RAM:#x} returned {}, expected INVALID_ADDRESS (-9)",
            Raw(raw)
        );
        Ok(())
    });
    report::case("affinity_info_invalid_level", || {
        let raw = hvc(AFFINITY_INFO_64, [0, 1, 0])?;
        ensure!(
            psci::decode(raw) == Err(PsciError::InvalidParameters),
            "AFFINITY_INFO at lowest level 1 returned {}, expected INVALID_PARAMETERS (-2): only level 0 exists",
            Raw(raw)
        );
        Ok(())
    });
    report::case("cpu_suspend", || {
        if !under_tessera {
            // A native PSCI (QEMU's) suspends in WFI until an interrupt that
            // this guest, with its interrupts off, never gets.
            fail!(
                "skipped: not running under Tessera (see hypervisor_uid), where CPU_SUSPEND may wait for an interrupt"
            );
        }
        // The entry point is ignored for a standby state (DEN 0022 §5.4.2):
        // 0, so that a wrong resume there faults visibly.
        let raw = hvc(CPU_SUSPEND_64, [u64::from(STANDBY), 0, 0])?;
        ensure!(
            signed(raw) == 0,
            "CPU_SUSPEND(standby) returned {}, expected 0",
            Raw(raw)
        );
        Ok(())
    });
    report::case("sve_hidden", sve_hidden);
    report::case("implementation_defined_register_undefined", || {
        ensure!(
            under_tessera,
            "skipped: not running under Tessera (natively the register may exist)"
        );
        implementation_defined_register_undefined()
    });
    report::case("physical_timer_inert", || {
        ensure!(
            under_tessera,
            "skipped: not running under Tessera (the physical timer is the guest's natively)"
        );
        physical_timer_inert()
    });
    report::case("ram_pattern", || ram_round(context, 0));

    report::finish();
    // SYSTEM_OFF over SMC: Tessera answers SMC like HVC.
    match smccc::try_call(Conduit::Smc, SYSTEM_OFF, [0; 3]) {
        Ok([raw, ..]) => println!("a: SYSTEM_OFF over SMC returned {}", Raw(raw)),
        Err(trap) => println!("a: SYSTEM_OFF over SMC raised {trap}"),
    }
    println!("a: powering off over HVC instead");
    Psci::HVC.system_off()
}

/// ID_AA64PFR0_EL1.SVE [35:32], which Tessera clears (it does not manage SVE state).
const PFR0_SVE_SHIFT: u64 = 32;

/// SVE is invisible: ID_AA64PFR0_EL1.SVE is 0 and ID_AA64ZFR0_EL1 reads 0
/// (both trapped by HCR_EL2.TID3 and answered by Tessera). On a core
/// without SVE this holds natively too; with `-cpu max` it shows the policy.
fn sve_hidden() -> Outcome {
    let (pfr0, zfr0): (u64, u64);
    // SAFETY: reading two feature ID registers has no side effects.
    unsafe {
        core::arch::asm!(
            "mrs {pfr0}, ID_AA64PFR0_EL1",
            "mrs {zfr0}, S3_0_C0_C4_4",
            pfr0 = out(reg) pfr0,
            zfr0 = out(reg) zfr0,
            options(nomem, nostack, preserves_flags)
        );
    }
    ensure!(
        (pfr0 >> PFR0_SVE_SHIFT) & 0xf == 0,
        "ID_AA64PFR0_EL1 is {pfr0:#x}: SVE is advertised"
    );
    ensure!(zfr0 == 0, "ID_AA64ZFR0_EL1 is {zfr0:#x}, expected 0");
    Ok(())
}

/// ESR_EL1.EC 0: an unknown reason, what an undefined instruction reports.
const EC_UNKNOWN: u8 = 0;

/// An implementation-defined system register traps to Tessera
/// (HCR_EL2.TIDCP), which injects an undefined instruction. L2CTLR_EL1
/// (op0 3, op1 1, CRn 11, CRm 0, op2 2) controls the L2 cache a Cortex-A72
/// cluster shares, so no partition may touch it.
fn implementation_defined_register_undefined() -> Outcome {
    let (value, trap) = tessera_guest_kit::exception::catch(|| {
        let mut value: u64 = 0;
        // SAFETY: a read of an implementation-defined register: either it
        // traps (and the vectors skip it) or it reads a value, with no
        // side effect either way.
        unsafe {
            core::arch::asm!("mrs {}, S3_1_C11_C0_2", inout(reg) value, options(nomem, nostack, preserves_flags));
        }
        value
    });
    let Some(trap) = trap else {
        fail!("the read returned {value:#x}: it should have been refused");
    };
    ensure!(
        trap.class() == EC_UNKNOWN,
        "the read raised {trap}, expected an undefined instruction (EC 0)"
    );
    Ok(())
}

/// CNTP_CTL_EL0.ENABLE: the bit a write tries to set.
const CNTP_CTL_ENABLE: u64 = 1;

/// The EL1 physical timer is trapped and inert: a write of ENABLE to
/// CNTP_CTL_EL0 and of a compare value to CNTP_CVAL_EL0 read back as 0.
fn physical_timer_inert() -> Outcome {
    let (control, compare): (u64, u64);
    // SAFETY: the physical timer is not used by this guest; with its
    // interrupts masked, even a live timer could not disturb it.
    unsafe {
        core::arch::asm!(
            "msr CNTP_CVAL_EL0, {cval}",
            "msr CNTP_CTL_EL0, {enable}",
            "isb",
            "mrs {control}, CNTP_CTL_EL0",
            "mrs {compare}, CNTP_CVAL_EL0",
            "msr CNTP_CTL_EL0, xzr",
            cval = in(reg) u64::MAX,
            enable = in(reg) CNTP_CTL_ENABLE,
            control = out(reg) control,
            compare = out(reg) compare,
            options(nomem, nostack, preserves_flags)
        );
    }
    ensure!(
        control == 0,
        "CNTP_CTL_EL0 read {control:#x} after writing ENABLE, expected 0"
    );
    ensure!(compare == 0, "CNTP_CVAL_EL0 read {compare:#x}, expected 0");
    Ok(())
}

/// x4..x17 survive a call of PSCI_VERSION, which returns only x0.
fn preserves_registers(conduit: Conduit) -> Outcome {
    let check = smccc::call_with_canaries(conduit, PSCI_VERSION)
        .map_err(|trap| Failure::new(format_args!("{} raised {trap}", conduit.name())))?;
    if let Some((register, value)) = check.first_clobbered() {
        fail!(
            "{} of PSCI_VERSION changed {} of x4..x17; x{register} = {value:#x}, expected {:#x}",
            conduit.name(),
            check.clobbered_count(),
            smccc::canary(register)
        );
    }
    ensure!(
        psci::decode(check.x0) == Ok(psci::VERSION_1_1),
        "{} of PSCI_VERSION returned {}: not answered like HVC",
        conduit.name(),
        Raw(check.x0)
    );
    Ok(())
}

/// CPU_ON of vCPU 1: it runs the secondary entry with the context id in x0
/// and reports in; it then waits for the boot vCPU's release.
fn cpu_on_secondary() -> Outcome {
    let raw = hvc(
        CPU_ON_64,
        [SECONDARY_MPIDR, secondary_entry_point(), CONTEXT_ID],
    )?;
    ensure!(
        signed(raw) == 0,
        "CPU_ON of vCPU 1 returned {}, expected SUCCESS (0)",
        Raw(raw)
    );
    let parked = time::wait_until(WAIT_MS, || STAGE.load(Ordering::SeqCst) == STAGE_PARKED);
    ensure!(
        parked,
        "CPU_ON succeeded but vCPU 1 did not run the entry point within {WAIT_MS} ms"
    );
    let seen = SEEN_CONTEXT_ID.load(Ordering::SeqCst);
    ensure!(
        seen == CONTEXT_ID,
        "vCPU 1 received x0 = {seen:#x}, expected the context id {CONTEXT_ID:#x}"
    );
    let vcpu = SEEN_VCPU.load(Ordering::SeqCst);
    ensure!(
        vcpu == 1,
        "the started vCPU has index (MPIDR Aff0) {vcpu}, expected 1"
    );
    Ok(())
}

/// Releases vCPU 1, which calls CPU_OFF; AFFINITY_INFO must then say OFF.
fn cpu_off_affinity_info(started: bool) -> Outcome {
    RELEASE.store(true, Ordering::SeqCst);
    cpu::send_event();
    ensure!(
        started,
        "vCPU 1 did not start (see cpu_on_secondary): nothing to turn off"
    );
    let mut last = 0;
    let mut trap = None;
    let off = time::wait_until(WAIT_MS, || {
        if STAGE.load(Ordering::SeqCst) == STAGE_CPU_OFF_FAILED {
            return true;
        }
        match smccc::try_call(Conduit::Hvc, AFFINITY_INFO_64, [SECONDARY_MPIDR, 0, 0]) {
            Ok([raw, ..]) => {
                last = raw;
                signed(raw) == AFFINITY_OFF
            }
            Err(error) => {
                trap = Some(error);
                true
            }
        }
    });
    if let Some(trap) = trap {
        fail!("AFFINITY_INFO raised {}", trap);
    }
    if STAGE.load(Ordering::SeqCst) == STAGE_CPU_OFF_FAILED {
        fail!(
            "CPU_OFF on vCPU 1 returned {}",
            Raw(CPU_OFF_RESULT.load(Ordering::SeqCst))
        );
    }
    ensure!(
        off,
        "AFFINITY_INFO(1) still returned {} after {WAIT_MS} ms, expected OFF (1)",
        Raw(last)
    );
    Ok(())
}
