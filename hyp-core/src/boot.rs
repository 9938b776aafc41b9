//! The boot sequence. Init order, once:
//!
//! 1. entry.S: relocate, clear BSS, boot stack, vectors (MMU off).
//! 2. Read the DTB; without one, say so on the build's fallback UART and halt.
//! 3. Console from `/chosen/stdout-path`, then the logger.
//! 4. Discover the hardware; on any fatal problem, list them all and halt.
//! 5. Build the EL2 map and turn on the MMU and caches. Before this point no
//!    code may use atomic read-modify-write or locks (see `console.rs`).
//! 6. Heap on free RAM.
//! 7. GIC distributor and this CPU's interface.
//! 8. Secondary CPUs, each reporting in.
//! 9. Banner.
//! 10. The partition configuration: checked, then every partition built and
//!     started; this CPU then runs its own vCPU, if it has one.

use core::fmt::Write;

use log::{error, info, warn};
use platform::uart::Uart;

use crate::arch::{cpu, layout, mmu};
use crate::dt::Fdt;
use crate::dt::fdt::{FDT_HEADER_SIZE, FdtError, total_size_from_header};
use crate::hw::{self, Issues};
use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::{hyp_map, hyp_memory};
use crate::power::{self, PowerControl, ResetDevice};
use crate::time::{Elapsed, Timestamp};
use crate::{
    banner, config, console, entropy, fault_injection, heap, logging, partition, physical_gic, smp,
};

/// "0.1.0 (ee781e3)".
const VERSION: &str = env!("CARGO_PKG_VERSION");
const GIT: &str = env!("TESSERA_GIT");

/// Why there is no device tree to read.
enum DtbProblem {
    Missing,
    Misaligned(usize),
    Invalid(usize, FdtError),
}

impl core::fmt::Display for DtbProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtbProblem::Missing => f.write_str(
                "no device tree: x0 was 0 at entry. Boot Tessera the way Linux is booted \
                 (U-Boot: booti <image> - <dtb>; QEMU: -kernel), which passes the DTB in x0",
            ),
            DtbProblem::Misaligned(address) => {
                write!(
                    f,
                    "the device tree address {address:#x} in x0 is not 8-byte aligned"
                )
            }
            DtbProblem::Invalid(address, error) => {
                write!(f, "the device tree at {address:#x} is invalid: {error}")
            }
        }
    }
}

/// The DTB whose address was in x0.
fn read_device_tree(address: usize) -> Result<Fdt<'static>, DtbProblem> {
    if address == 0 {
        return Err(DtbProblem::Missing);
    }
    if !address.is_multiple_of(8) {
        return Err(DtbProblem::Misaligned(address));
    }
    // SAFETY: the boot protocol puts a DTB at x0. If the bootloader lied, the
    // read faults into the EL2 vectors (a crash report), or reads garbage
    // that the checks below reject. Nothing writes this memory: it is
    // reserved from the heap and mapped read-only once the MMU is on.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, FDT_HEADER_SIZE) };
    let total = total_size_from_header(header).map_err(|e| DtbProblem::Invalid(address, e))?;
    // SAFETY: as above, for the `totalsize` bytes the header claims (at most 2 MiB).
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, total) };
    Fdt::new(blob).map_err(|e| DtbProblem::Invalid(address, e))
}

/// The console named by the DTB, or else the build's fallback UART.
fn early_uart(console: Option<&hw::console::Console<'_>>) -> Uart {
    let named = console.map(|console| (console.kind, console.registers.start().as_usize()));
    let (kind, address) = named.unwrap_or(platform::board::build_target().fallback_console);
    // SAFETY: the address is the console UART the DT names, or the board's
    // documented debug UART; the MMU is off, so it is reached as device
    // memory, and nothing else drives it yet.
    let mut uart = unsafe { Uart::new(kind, address) };
    uart.init();
    uart
}

/// Entered from entry.S at an EL other than 2 (x0 still holds the DTB).
#[unsafe(no_mangle)]
extern "C" fn wrong_el_main(dtb_address: usize, exception_level: u64) -> ! {
    let fdt = read_device_tree(dtb_address).ok();
    let console = fdt
        .as_ref()
        .and_then(|fdt| hw::console::discover(fdt, &mut Issues::default()));
    let mut uart = early_uart(console.as_ref());
    let _ = writeln!(
        uart,
        "Tessera: entered at EL{exception_level}, but a hypervisor must be entered at EL2. \
         Enable the virtualization extensions (QEMU: -M virt,virtualization=on) and boot \
         Tessera from EL2 (U-Boot's booti does, when U-Boot itself runs at EL2). Halting."
    );
    uart.flush();
    cpu::park()
}

/// Stops the boot after a problem that leaves nothing to run.
fn halt() -> ! {
    error!("Tessera cannot continue: halted");
    console::flush();
    cpu::park()
}

/// The boot CPU's Rust entry (entry.S), MMU off.
#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb_address: usize, load_address: usize, entry_ticks: u64) -> ! {
    let fdt = match read_device_tree(dtb_address) {
        Ok(fdt) => fdt,
        Err(problem) => {
            let mut uart = early_uart(None);
            let _ = writeln!(uart, "Tessera: cannot start: {problem}. Halting.");
            uart.flush();
            cpu::park()
        }
    };
    // Found once: the console comes first, and discovery takes it as found.
    let mut console_issues = Issues::default();
    let found_console = hw::console::discover(&fdt, &mut console_issues);
    console::install(early_uart(found_console.as_ref()));
    // Looked up once: finding a node by path walks the tree.
    let chosen = fdt.find_node("/chosen");
    let chosen_string = |name| {
        chosen
            .and_then(|c| c.property(name))
            .and_then(|p| p.as_str())
    };
    let level = chosen_string("tessera,log-level")
        .and_then(logging::parse_level)
        .unwrap_or(log::LevelFilter::Info);
    console::init_logger(level);
    let mut frequency = cpu::counter_frequency();
    console::set_time_origin(entry_ticks, frequency);
    info!(
        "Tessera {VERSION} ({GIT}), loaded at {load_address:#x}, device tree at {dtb_address:#x}"
    );

    let dtb_range = PhysRange::new(PhysAddr(dtb_address as u64), fdt.total_size() as u64);
    let discovered =
        hw::discover_with_console(&fdt, cpu::mpidr(), dtb_range, found_console, console_issues);
    let mut hardware = match discovered {
        Ok(hardware) => hardware,
        Err(issues) => {
            error!("the device tree does not describe a machine Tessera can run on:");
            report_issues(&issues);
            halt();
        }
    };
    if frequency == 0 {
        frequency = hardware.timer.clock_frequency.map_or(0, u64::from);
        warn!(
            "CNTFRQ_EL0 is 0 (firmware did not set it); using the DT's clock-frequency, {frequency} Hz"
        );
        console::set_time_origin(entry_ticks, frequency);
    }
    let Some(image) = layout::image() else {
        error!("the linker script's section symbols are out of order");
        halt();
    };
    let Some(whole_image) = image.whole() else {
        error!("Tessera's image reaches past the end of the address space");
        halt();
    };
    let heap_range = match hyp_memory::reserve(&mut hardware.memory, whole_image) {
        Ok(heap) => heap,
        Err(error) => {
            error!("{error}");
            halt();
        }
    };
    if !hardware.memory.is_ram(&whole_image) {
        warn!("Tessera's image at {whole_image} is not inside a RAM bank of the device tree");
    }

    let board = platform::board::identify(fdt.root().compatible());
    let reset_device = power::reset_device(&fdt, &hardware, board);
    let Some(dtb_range) = dtb_range else {
        error!("the device tree at {dtb_address:#x} reaches past the end of the address space");
        halt();
    };
    let extra_devices = match reset_device {
        (ResetDevice::Bcm2835Watchdog(_), Some(range)) => Some(range),
        _ => None,
    };
    let plan = match hyp_map::plan(&hardware, &image, dtb_range, extra_devices.as_slice()) {
        Ok(plan) => plan,
        Err(_) => {
            error!(
                "the EL2 map needs more than {} regions",
                hyp_map::MAX_MAPPINGS
            );
            halt();
        }
    };
    // SAFETY: the MMU is still off, and the plan maps the image (stack and
    // BSS included), the DTB and the console this CPU uses from here on.
    let mmu = match unsafe { mmu::enable(&plan, &image) } {
        Ok(summary) => summary,
        Err(error) => {
            error!("cannot build the EL2 page tables: {error}");
            halt();
        }
    };
    // Caches on: atomic read-modify-write (and so spin locks) works from here.
    console::enable_locking();

    // SAFETY: the range is free RAM (outside every reservation, the image and
    // the DTB), mapped read-write by the EL2 map, and this is the only call.
    unsafe { heap::init(heap_range) };

    for warning in hardware.warnings.iter() {
        warn!("{warning}");
    }
    let gic_info = match physical_gic::init(
        &hardware.gic.regions,
        hardware.gic.maintenance_intid,
        hardware.timer.hyp_physical,
    ) {
        Ok(info) => info,
        Err(error) => {
            error!("GIC: {error}");
            halt();
        }
    };
    cpu::enable_event_stream();

    power::configure(PowerControl {
        psci: hardware.psci.is_some(),
        reset_device: reset_device.0,
        reset_on_crash: chosen_string("tessera,crash-action") == Some("reset"),
    });

    let mapped = |address: u64| plan.maps(PhysAddr(address));
    let online = smp::start_secondaries(&hardware, mapped);
    let boot_time = console::since_entry();

    banner::banner(&hardware, board, &gic_info, &mmu, heap_range, frequency);
    info!(
        "{online} of {} CPUs online, {} after entry",
        hardware.cpus.list.len(),
        Elapsed(Timestamp {
            ticks: boot_time.ticks,
            frequency
        })
    );

    draw_key(chosen.as_ref());
    if let Some(fault) = chosen_string("tessera,fault-injection") {
        fault_injection::inject_fault(fault);
    }
    let plans = match config::read(&fdt, &hardware, &LoadedModules(&hardware.memory)) {
        Ok(plans) => plans,
        Err(errors) => {
            error!(
                "the partition configuration has {}; no partition starts:",
                config::Count(errors.len(), "error")
            );
            for problem in &errors {
                error!("  {problem}");
            }
            if chosen_string("tessera,config-error") == Some("power-off") {
                power::power_off();
            }
            error!("fix the overlay (check it with `cargo xtask check-config`) and reboot");
            halt();
        }
    };
    if plans.is_empty() {
        info!(
            "no partitions configured (no /hypervisor node with compatible \"tessera,hypervisor\"): powering off"
        );
        power::power_off();
    }
    if let Err(error) = partition::start_all(plans, &hardware) {
        error!("{error}");
        halt();
    }
    partition::run_this_cpu();
    idle()
}

/// A secondary CPU's first Rust code, MMU and caches on (entry.S).
#[unsafe(no_mangle)]
extern "C" fn secondary_main(index: usize) -> ! {
    smp::report_online(index);
    idle()
}

/// Where a CPU waits while it has nothing to run: until partitions start
/// (then it runs its vCPU, if it has one), or until it is told to stop.
fn idle() -> ! {
    let mut ran = false;
    loop {
        if smp::stop_requested() {
            smp::acknowledge_stop();
            cpu::park();
        }
        if !ran && partition::started() {
            ran = true;
            partition::run_this_cpu();
        }
        cpu::wait_for_event();
    }
}

/// Draws the key the partitions' seeds come from ([`entropy`]) from every
/// source there is (RNDR, the board's own seeds), and says which.
fn draw_key(chosen: Option<&crate::dt::Node<'_>>) {
    const RNDR_WORDS: usize = 4;
    let random: heapless::Vec<u64, RNDR_WORDS> =
        (0..RNDR_WORDS).filter_map(|_| cpu::random()).collect();
    let rndr: heapless::Vec<u8, 32> = random.iter().flat_map(|r| r.to_le_bytes()).collect();
    let seed = |name| chosen.and_then(|c| c.property(name)).map(|p| p.value);
    let board: heapless::Vec<&[u8], 2> = ["rng-seed", "kaslr-seed"]
        .into_iter()
        .filter_map(seed)
        .filter(|value| !value.is_empty())
        .collect();
    let source = entropy::Source {
        rndr: random.len() == RNDR_WORDS,
        board_seed: !board.is_empty(),
    };
    if !source.rndr && !source.board_seed {
        warn!(
            "no entropy: RNDR {} and the board's /chosen has no rng-seed or kaslr-seed; partitions get no seeds (KASLR stays off in their kernels)",
            if cpu::has_random() {
                "failed"
            } else {
                "is not implemented"
            }
        );
        return;
    }
    let mut material: heapless::Vec<&[u8], 3> = heapless::Vec::new();
    let _ = material.push(&rndr);
    for part in board {
        let _ = material.push(part);
    }
    entropy::set_key(source, entropy::key_from(&material));
    info!(
        "partitions' rng-seed and kaslr-seed come from {}",
        source.describe()
    );
}

/// Module headers read from where the bootloader put them.
struct LoadedModules<'m>(&'m hw::memory::MemoryMap);

impl config::ModuleContents for LoadedModules<'_> {
    fn header(&self, module: &config::Module<'_>) -> Option<[u8; config::image::HEADER_SIZE]> {
        if module.range.size() < config::image::HEADER_SIZE as u64 {
            return None;
        }
        let mut header = [0u8; config::image::HEADER_SIZE];
        // A module outside RAM is reported by the checks; it is not read.
        if self.0.is_ram(&module.range) {
            // SAFETY: the module lies in RAM, which the EL2 map covers,
            // and is reserved, so nothing writes it.
            let source = unsafe {
                core::slice::from_raw_parts(
                    module.range.start().as_usize() as *const u8,
                    header.len(),
                )
            };
            header.copy_from_slice(source);
            return Some(header);
        }
        None
    }
}

fn report_issues(issues: &Issues<'_>) {
    for issue in issues.iter() {
        match issue.severity {
            hw::Severity::Fatal => error!("  {issue}"),
            hw::Severity::Warning => warn!("  {issue}"),
        }
    }
    if issues.dropped() > 0 {
        error!("  ... and {} more problems", issues.dropped());
    }
}
