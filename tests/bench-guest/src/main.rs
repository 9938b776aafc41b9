//! The bare-metal guest of `cargo xtask bench`.
//!
//! The same binary runs in three places, and finds out which at boot:
//!
//! - **native**: booted by QEMU at EL1 with no hypervisor;
//! - **floor**: booted at EL2 with no hypervisor; it installs a trap
//!   handler that only returns ([`floor`]) and runs at EL1 above it;
//! - **tessera**: in a Tessera partition (the DTB has
//!   `/chosen/tessera,boot-count`).
//!
//! Interrupt figures ([`irq`]) run natively and in a partition, not over
//! the floor: the floor routes no interrupt to EL2, so it would only
//! repeat the native figures.
//!
//! It prints one `BENCH` line per figure, in instructions (QEMU runs with
//! `-icount shift=0`, so the PMU's cycle counter counts instructions), and
//! `BENCH done`, then powers off. xtask reads the lines, sets each figure
//! beside its baseline and writes the report.
//!
//! `/chosen/bootargs` may hold `iterations=<n>` (samples per latency,
//! default [`DEFAULT_ITERATIONS`]) and `run=boot` (only the boot figure).

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod floor;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod pmu;
#[cfg(target_os = "none")]
mod sample;
#[allow(dead_code, reason = "the host build only unit-tests it")]
mod stats;

/// Samples per latency figure when bootargs do not say.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
const DEFAULT_ITERATIONS: usize = 1000;

#[cfg(target_os = "none")]
mod guest {
    use core::cell::UnsafeCell;

    use tessera_guest_kit::boot::{boot_fdt, entry_counter, image_region};
    use tessera_guest_kit::console::PL011_BASE;
    use tessera_guest_kit::fdt::Region;
    use tessera_guest_kit::gic::{self, Layout, Version};
    use tessera_guest_kit::memory::free_ranges;
    use tessera_guest_kit::psci::{PSCI_VERSION, Psci};
    use tessera_guest_kit::smccc::{SMCCC_VERSION, TESSERA_NULL};
    use tessera_guest_kit::{bootargs, entry, println, time};

    use crate::stats::{Summary, summarise};
    use crate::{DEFAULT_ITERATIONS, floor, irq, pmu, sample};

    entry!(main, irq::pong_main);

    /// Where the guest runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Native,
        Floor,
        Tessera,
    }

    impl Mode {
        fn name(self) -> &'static str {
            match self {
                Mode::Native => "native",
                Mode::Floor => "floor",
                Mode::Tessera => "tessera",
            }
        }

        /// The register the MMIO figures read and write: the PL011's flag
        /// register and interrupt mask under Tessera (emulated), an
        /// unmapped address over the floor.
        fn mmio_registers(self) -> (usize, usize) {
            match self {
                Mode::Floor => (
                    floor::UNMAPPED_MMIO + UARTFR,
                    floor::UNMAPPED_MMIO + UARTIMSC,
                ),
                _ => (PL011_BASE + UARTFR, PL011_BASE + UARTIMSC),
            }
        }
    }

    /// PL011 registers (DDI 0183G §3.3): the flag register (read) and the
    /// interrupt mask (written with 0, as the guest keeps it).
    const UARTFR: usize = 0x018;
    const UARTIMSC: usize = 0x038;
    /// GIC registers (IHI 0069H §12.9.38, §12.11.37): GICD_TYPER; the
    /// priority bytes of SPIs 32-35 in GICD_IPRIORITYR; GICR_TYPER.
    const GICD_TYPER: usize = 0x004;
    const FIRST_SPI_PRIORITIES: usize = 32;
    const GICR_TYPER: usize = 0x008;

    /// The GIC trap figures.
    const GICD_TYPER_READ: &str = "gicd_typer_read";
    const GICD_IPRIORITYR_WRITE: &str = "gicd_ipriorityr_write";
    const GICR_TYPER_READ: &str = "gicr_typer_read";

    /// The most samples kept per figure.
    const MAX_SAMPLES: usize = 10_000;
    /// Rounds of the CPU-bound loop (3 instructions each).
    const CPU_LOOP_ROUNDS: u64 = 1_000_000;
    /// The memory-bound loop's buffer and sweeps over it.
    const MEMORY_LOOP_BYTES: usize = 4 << 20;
    const MEMORY_LOOP_PASSES: u64 = 4;

    struct Samples(UnsafeCell<[u64; MAX_SAMPLES]>);
    // SAFETY: only the boot vCPU runs the bench.
    unsafe impl Sync for Samples {}
    /// One figure's samples, and a second figure's taken from the same
    /// events (the interrupt handler's own cost).
    static SAMPLES: Samples = Samples(UnsafeCell::new([0; MAX_SAMPLES]));
    static HANDLING_SAMPLES: Samples = Samples(UnsafeCell::new([0; MAX_SAMPLES]));

    /// The interrupt figures: delivery of the virtual timer's interrupt and
    /// of an SGI to this vCPU, and the handler's acknowledge and end of
    /// interrupt (from the timer's events).
    const TIMER_IRQ: &str = "timer_irq";
    const SGI_SELF: &str = "sgi_self";
    const SGI_ROUND_TRIP: &str = "sgi_round_trip";
    const EOI: &str = "eoi";

    fn main(_dtb: usize) -> ! {
        let started = entry_counter();
        let mode = if floor::at_el2() {
            floor::enter_el1();
            Mode::Floor
        } else {
            let fdt = boot_fdt();
            match fdt.map(|f| f.boot_count()) {
                Ok(Ok(Some(_))) => Mode::Tessera,
                _ => Mode::Native,
            }
        };
        let fdt = boot_fdt().ok();
        let arguments = fdt.and_then(|f| f.bootargs().ok().flatten()).unwrap_or("");
        let iterations = bootargs::value(arguments, "iterations")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(DEFAULT_ITERATIONS)
            .clamp(1, MAX_SAMPLES);
        println!("BENCH mode={} iterations={iterations}", mode.name());
        println!("BENCH boot_entry instructions={}", to_instructions(started));
        if bootargs::value(arguments, "run") != Some("boot") {
            pmu::start();
            run(
                mode,
                iterations,
                fdt.and_then(|f| f.memory().ok().flatten()),
            );
        }
        println!("BENCH done");
        // Over the floor an HVC only returns; QEMU's PSCI answers the SMC.
        let psci = if mode == Mode::Floor {
            Psci::SMC
        } else {
            Psci::HVC
        };
        psci.system_off()
    }

    /// Counter ticks to instructions: under `-icount shift=0` an
    /// instruction takes one nanosecond.
    fn to_instructions(ticks: u64) -> u64 {
        let nanoseconds = u128::from(ticks) * 1_000_000_000 / u128::from(time::frequency());
        u64::try_from(nanoseconds).unwrap_or(u64::MAX)
    }

    fn run(mode: Mode, iterations: usize, ram: Option<Region>) {
        let overhead = overhead(iterations);
        println!("BENCH counter_overhead instructions={overhead}");
        if mode != Mode::Native {
            // Natively QEMU answers HVC inside the emulator (or not at all):
            // trap figures exist only with something at EL2.
            latency("null_hvc", iterations, overhead, || {
                sample::hvc(TESSERA_NULL)
            });
            latency("smccc_version", iterations, overhead, || {
                sample::hvc(SMCCC_VERSION)
            });
            latency("psci_version", iterations, overhead, || {
                sample::hvc(PSCI_VERSION)
            });
            let (read, write) = mode.mmio_registers();
            latency("mmio_read", iterations, overhead, || sample::load(read));
            latency("mmio_write", iterations, overhead, || {
                sample::store(write, 0)
            });
            gic_traps(mode, iterations, overhead);
        }
        // Before the interrupt figures, which leave vCPU 1 on (waiting in
        // WFI): nothing may run beside the workloads.
        if mode != Mode::Floor {
            workload("cpu_loop", || {
                sample::cpu_loop(CPU_LOOP_ROUNDS);
            });
            match ram.and_then(loop_buffer) {
                Some(buffer) => workload("memory_loop", || {
                    sample::memory_loop(buffer, MEMORY_LOOP_BYTES, MEMORY_LOOP_PASSES)
                }),
                None => {
                    println!("BENCH memory_loop skipped: no {MEMORY_LOOP_BYTES} bytes of free RAM")
                }
            }
        }
        interrupts(mode, iterations, overhead);
    }

    /// The emulated GIC's registers, by trap: a read of GICD_TYPER, a
    /// write of an SPI's priorities (GICD_IPRIORITYR, the value the guest
    /// keeps), a 64-bit read of this vCPU's GICR_TYPER (GICv3). Over the
    /// floor, the same offsets of an unmapped window.
    fn gic_traps(mode: Mode, iterations: usize, overhead: u64) {
        let layout = boot_fdt().ok().and_then(|fdt| Layout::find(&fdt).ok());
        let (distributor, redistributor) = match (mode, layout) {
            (Mode::Floor, _) => (floor::UNMAPPED_MMIO, Some(floor::UNMAPPED_MMIO)),
            (_, Some(layout)) => {
                let distributor = usize::try_from(layout.distributor.base).unwrap_or(0);
                let redistributor = (layout.version == Version::V3)
                    .then(|| usize::try_from(layout.cpu.base).unwrap_or(0));
                (distributor, redistributor)
            }
            (_, None) => {
                for name in [GICD_TYPER_READ, GICD_IPRIORITYR_WRITE, GICR_TYPER_READ] {
                    println!("BENCH {name} skipped: no GIC in the DT");
                }
                return;
            }
        };
        latency(GICD_TYPER_READ, iterations, overhead, || {
            sample::load(distributor + GICD_TYPER)
        });
        let priorities = distributor + gic::IPRIORITYR + FIRST_SPI_PRIORITIES;
        let value = u32::from_le_bytes([gic::DEFAULT_PRIORITY; 4]);
        latency(GICD_IPRIORITYR_WRITE, iterations, overhead, || {
            sample::store(priorities, value)
        });
        match redistributor {
            Some(base) => latency(GICR_TYPER_READ, iterations, overhead, || {
                sample::load64(base + GICR_TYPER)
            }),
            None => println!("BENCH {GICR_TYPER_READ} skipped: GICv2 has no redistributors"),
        }
    }

    /// The smallest cost of reading the counter twice: what every sample
    /// carries on top of the operation.
    fn overhead(iterations: usize) -> u64 {
        (0..iterations).map(|_| sample::empty()).min().unwrap_or(0)
    }

    /// `iterations` samples of `operation`, less the counter's overhead,
    /// and the instructions executed at EL2 over all of them.
    fn latency(name: &str, iterations: usize, overhead: u64, mut operation: impl FnMut() -> u64) {
        // SAFETY: only this function and `interrupt_latency`, never at the
        // same time, use SAMPLES, on the boot vCPU.
        let samples = unsafe { &mut (&mut *SAMPLES.0.get())[..iterations] };
        operation(); // once untimed: the first call may differ (warnings, first use)
        let el2_before = pmu::el2_instructions();
        for slot in samples.iter_mut() {
            *slot = operation().saturating_sub(overhead);
        }
        let el2 = pmu::el2_instructions().wrapping_sub(el2_before);
        print_latency(name, samples, el2);
    }

    /// The interrupt figures, or why there are none.
    fn interrupts(mode: Mode, iterations: usize, overhead: u64) {
        let names = [TIMER_IRQ, SGI_SELF, EOI, SGI_ROUND_TRIP];
        if mode == Mode::Floor {
            for name in names {
                println!(
                    "BENCH {name} skipped: the floor routes no interrupt to EL2: it would equal native"
                );
            }
            return;
        }
        let sources = match irq::Sources::set_up() {
            Ok(sources) => sources,
            Err(why) => {
                for name in names {
                    println!("BENCH {name} skipped: {why}");
                }
                return;
            }
        };
        let _vectors = irq::Vectors::install();
        interrupt_latency(TIMER_IRQ, Some(EOI), iterations, overhead, || {
            sources.timer()
        });
        interrupt_latency(SGI_SELF, None, iterations, overhead, || sources.sgi());
        match sources.start_vcpu_1() {
            Ok(()) => interrupt_latency(SGI_ROUND_TRIP, None, iterations, overhead, || {
                sources.round_trip()
            }),
            Err(why) => println!("BENCH {SGI_ROUND_TRIP} skipped: {why}"),
        }
    }

    /// `iterations` interrupts raised by `raise`: their delivery latency,
    /// less the counter's overhead, with the instructions at EL2 over all
    /// of them (`name`); and with `handling`, the handler's acknowledge and
    /// end of interrupt, less the overhead of its two pairs of counter
    /// reads, with the instructions at EL2 between them.
    fn interrupt_latency(
        name: &str,
        handling: Option<&str>,
        iterations: usize,
        overhead: u64,
        mut raise: impl FnMut() -> Result<irq::Event, irq::Missed>,
    ) {
        // SAFETY: as in `latency`; HANDLING_SAMPLES is used here only.
        let (samples, handling_samples) = unsafe {
            (
                &mut (&mut *SAMPLES.0.get())[..iterations],
                &mut (&mut *HANDLING_SAMPLES.0.get())[..iterations],
            )
        };
        let skip = |why: irq::Missed| {
            for figure in core::iter::once(name).chain(handling) {
                println!("BENCH {figure} skipped: {why}");
            }
        };
        // Once untimed, as in `latency`.
        if let Err(why) = raise() {
            return skip(why);
        }
        let mut handling_el2 = 0u64;
        let el2_before = pmu::el2_instructions();
        for (slot, handling_slot) in samples.iter_mut().zip(handling_samples.iter_mut()) {
            match raise() {
                Ok(event) => {
                    *slot = event.latency.saturating_sub(overhead);
                    *handling_slot = event.handling.saturating_sub(2 * overhead);
                    handling_el2 = handling_el2.wrapping_add(event.handling_el2);
                }
                Err(why) => return skip(why),
            }
        }
        let el2 = pmu::el2_instructions().wrapping_sub(el2_before);
        print_latency(name, samples, el2);
        if let Some(handling) = handling {
            print_latency(handling, handling_samples, handling_el2);
        }
    }

    /// A latency figure's `BENCH` line.
    fn print_latency(name: &str, samples: &mut [u64], el2: u64) {
        if let Some(Summary {
            samples,
            min,
            p25,
            median,
            p75,
            p99,
            max,
        }) = summarise(samples)
        {
            println!(
                "BENCH {name} samples={samples} min={min} p25={p25} median={median} p75={p75} p99={p99} max={max} el2_total={el2}"
            );
        }
    }

    /// One run of `operation`: instructions in all, and at EL2.
    fn workload(name: &str, operation: impl FnOnce()) {
        let el2_before = pmu::el2_instructions();
        let before = pmu::instructions();
        operation();
        let total = pmu::instructions().wrapping_sub(before);
        let el2 = pmu::el2_instructions().wrapping_sub(el2_before);
        println!("BENCH {name} instructions={total} el2_total={el2}");
    }

    /// A 2 MiB-aligned buffer for the memory-bound loop in free RAM.
    fn loop_buffer(ram: Region) -> Option<usize> {
        const ALIGN: u64 = 2 << 20;
        let dtb = tessera_guest_kit::boot::boot_dtb_address() as u64;
        let used = [
            image_region(),
            Region {
                base: dtb & !(ALIGN - 1),
                size: 2 * ALIGN,
            },
        ];
        free_ranges(ram, &used).into_iter().find_map(|free| {
            let start = free.base.next_multiple_of(ALIGN);
            let fits = start + MEMORY_LOOP_BYTES as u64 <= free.end();
            fits.then(|| usize::try_from(start).ok()).flatten()
        })
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "bench-guest runs at EL1 on QEMU virt, natively or in a Tessera partition: \
         `cargo xtask bench` builds and runs it."
    );
    std::process::exit(1);
}
