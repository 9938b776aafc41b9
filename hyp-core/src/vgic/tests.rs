//! The virtual GIC against CPU interfaces held in memory: what a guest
//! would see delivered, and what its register writes may and may not do.

use std::collections::BTreeSet;

use super::banks::{
    ICACTIVER, ICENABLER, ICPENDR, IPRIORITYR, ISACTIVER, ISENABLER, ISPENDR, ITARGETSR,
};
use super::flush::CpuInterface;
use super::hardware_linked::StateChange;
use super::list_register::{ListRegister, LrState};
use super::state::VcpuSet;
use super::{Effects, Frame, VIRTUAL_TIMER_INTID, Vgic};
use crate::guest::mmio::AccessWidth;
use crate::guest::mmio_bus::{Device, MmioBus};
use crate::hw::gic::GicVersion;

const W1: AccessWidth = AccessWidth::Byte;
const W4: AccessWidth = AccessWidth::Word;
const W8: AccessWidth = AccessWidth::Double;

/// One CPU's GIC interface: four list registers, as QEMU and the GIC-400
/// have, and the physical state of what is hardware-linked, as a log.
struct FakeCpu {
    version: GicVersion,
    values: [u64; 4],
    /// Every physical change asked for, in order.
    physical: Vec<(u32, StateChange)>,
    /// Physical INTIDs pending.
    physically_pending: BTreeSet<u32>,
}

impl FakeCpu {
    fn new(version: GicVersion) -> FakeCpu {
        FakeCpu {
            version,
            values: [0; 4],
            physical: Vec::new(),
            physically_pending: BTreeSet::new(),
        }
    }

    /// The guest acknowledges the most urgent pending interrupt and
    /// deactivates it, as the virtual CPU interface would.
    fn guest_takes(&mut self) -> Option<u32> {
        let index = self.guest_acknowledges()?;
        let lr = self.read(index);
        self.guest_deactivates(index);
        Some(lr.intid)
    }

    /// The guest acknowledges the most urgent pending interrupt (now
    /// active); returns its list register.
    fn guest_acknowledges(&mut self) -> Option<usize> {
        let (index, mut lr) = (0..self.values.len())
            .map(|i| (i, self.read(i)))
            .filter(|(_, lr)| lr.state == LrState::Pending)
            .min_by_key(|(_, lr)| (lr.priority, lr.intid))?;
        lr.state = LrState::Active;
        self.write(index, &lr);
        Some(index)
    }

    /// The guest ends the interrupt in register `index`; the HW bit
    /// deactivates the physical one too.
    fn guest_deactivates(&mut self, index: usize) {
        let mut lr = self.read(index);
        if lr.hw {
            self.physical.push((lr.intid, StateChange::Deactivate));
        }
        lr.state = match lr.state {
            LrState::PendingActive => LrState::Pending,
            _ => LrState::Invalid,
        };
        self.write(index, &lr);
    }

    fn holds(&self, intid: u32) -> Option<LrState> {
        (0..self.values.len())
            .map(|i| self.read(i))
            .find(|lr| lr.state != LrState::Invalid && lr.intid == intid)
            .map(|lr| lr.state)
    }

    /// The physical changes asked for since the last call.
    fn take_physical(&mut self) -> Vec<(u32, StateChange)> {
        core::mem::take(&mut self.physical)
    }
}

impl CpuInterface for FakeCpu {
    fn count(&self) -> usize {
        self.values.len()
    }

    fn read(&self, index: usize) -> ListRegister {
        ListRegister::decode(self.version, self.values[index])
    }

    fn write(&mut self, index: usize, value: &ListRegister) {
        self.values[index] = value.encode(self.version);
    }

    fn empty(&self) -> u64 {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| ListRegister::decode(self.version, **v).state == LrState::Invalid)
            .fold(0, |mask, (i, _)| mask | 1 << i)
    }

    fn physical(&mut self, intid: u32, action: StateChange) {
        match action {
            StateChange::SetPending => {
                self.physically_pending.insert(intid);
            }
            StateChange::ClearPending => {
                self.physically_pending.remove(&intid);
            }
            _ => {}
        }
        self.physical.push((intid, action));
    }
}

const GICD_CTLR_BOTH_GROUPS: u64 = 0b11;
const PL011_SPI: u32 = 33;
/// A passthrough device's SPI: hardware-linked.
const DEVICE_SPI: u32 = 40;
const GICD_SGIR: u32 = 0xf00;

/// A partition's virtual GIC and the CPUs its vCPUs run on.
struct Harness {
    vgic: Vgic,
    cpus: Vec<FakeCpu>,
}

impl Harness {
    fn new(version: GicVersion, vcpus: usize, spis: Vec<(u32, bool)>) -> Harness {
        let harness = Harness {
            vgic: Vgic::new(version, vcpus, spis),
            cpus: (0..vcpus).map(|_| FakeCpu::new(version)).collect(),
        };
        let mut harness = harness;
        harness.write(
            0,
            Frame::Distributor { offset: 0 },
            W4,
            GICD_CTLR_BOTH_GROUPS,
        );
        harness
    }

    /// Two vCPUs owning the PL011's SPI (and [`DEVICE_SPI`], hardware-linked).
    fn two_vcpus(version: GicVersion) -> Harness {
        Harness::new(version, 2, vec![(PL011_SPI, false), (DEVICE_SPI, true)])
    }

    fn version(&self) -> GicVersion {
        self.vgic.version()
    }

    /// A write by `vcpu` (on its own CPU); the physical changes go to the
    /// CPU of the vCPU each names, as `Partition::wake` does.
    fn write(&mut self, vcpu: usize, frame: Frame, width: AccessWidth, value: u64) -> Effects {
        let mut effects = Effects::default();
        self.vgic.write(
            vcpu,
            frame,
            width,
            value,
            &mut self.cpus[vcpu],
            &mut effects,
        );
        for op in &effects.physical {
            self.cpus[op.vcpu].physical(op.intid, op.action);
        }
        effects
    }

    fn read(&mut self, vcpu: usize, frame: Frame, width: AccessWidth) -> u64 {
        self.vgic.read(vcpu, frame, width, &mut self.cpus[vcpu])
    }

    /// Fills `vcpu`'s list registers; true if interrupts still wait.
    fn flush(&mut self, vcpu: usize) -> bool {
        self.vgic.flush(vcpu, &mut self.cpus[vcpu]).waiting
    }

    /// Sends SGI `sgi` from `vcpu` to the vCPUs in `targets`.
    fn send_sgi(&mut self, vcpu: usize, sgi: u32, targets: u16) -> Effects {
        match self.version() {
            GicVersion::V3 => {
                let mut effects = Effects::default();
                let value = (u64::from(sgi) << 24) | u64::from(targets);
                self.vgic.send_sgi(vcpu, value, &mut effects);
                effects
            }
            GicVersion::V2 => {
                let value = (u64::from(targets) << 16) | u64::from(sgi);
                self.write(vcpu, Frame::Distributor { offset: GICD_SGIR }, W4, value)
            }
        }
    }

    /// The frame of `bank` for `vcpu`'s SGIs and PPIs.
    fn private(&self, vcpu: usize, bank: u32) -> Frame {
        private_frame(self.version(), vcpu, bank)
    }

    /// Delivers everything pending to `vcpu`, refilling its list registers
    /// whenever the guest has taken one, and returns the INTIDs in the
    /// order the guest saw them.
    fn deliver_all(&mut self, vcpu: usize) -> Vec<u32> {
        let mut seen = Vec::new();
        loop {
            if self.vgic.needs_flush(vcpu) {
                self.flush(vcpu);
            }
            match self.cpus[vcpu].guest_takes() {
                Some(intid) => seen.push(intid),
                None => return seen,
            }
        }
    }

    /// Whether `intid` (as `vcpu` sees it) reads set in `bank`.
    fn bit(&mut self, vcpu: usize, bank: u32, intid: u32) -> bool {
        let frame = if intid < 32 {
            self.private(vcpu, bank)
        } else {
            Frame::Distributor {
                offset: bank + intid / 32 * 4,
            }
        };
        self.read(vcpu, frame, W4) & (1 << (intid % 32)) != 0
    }

    /// Writes `intid`'s bit to `bank`.
    fn set_bit(&mut self, vcpu: usize, bank: u32, intid: u32) -> Effects {
        let frame = if intid < 32 {
            self.private(vcpu, bank)
        } else {
            Frame::Distributor {
                offset: bank + intid / 32 * 4,
            }
        };
        self.write(vcpu, frame, W4, 1 << (intid % 32))
    }
}

/// The frame holding `bank` for vCPU `vcpu`'s private interrupts.
fn private_frame(version: GicVersion, vcpu: usize, bank: u32) -> Frame {
    match version {
        GicVersion::V3 => Frame::Redistributor {
            vcpu,
            offset: super::redistributor::FRAME_SIZE + u64::from(bank),
        },
        GicVersion::V2 => Frame::Distributor { offset: bank },
    }
}

const BOTH: [GicVersion; 2] = [GicVersion::V3, GicVersion::V2];

#[test]
fn a_burst_beyond_the_list_registers_is_delivered_once_each_in_priority_order() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        // Enable all 16 SGIs with priorities scrambled against their INTIDs.
        let enable = gic.private(0, ISENABLER);
        gic.write(0, enable, W4, 0xffff);
        for sgi in 0..16u32 {
            let priority = u64::from(((sgi * 7) % 16) * 8);
            let frame = gic.private(0, IPRIORITYR + sgi);
            gic.write(0, frame, W1, priority);
        }
        for sgi in 0..16 {
            gic.send_sgi(1, sgi, 0b01);
        }
        let seen = gic.deliver_all(0);
        let mut expected: Vec<u32> = (0..16).collect();
        expected.sort_by_key(|&sgi| ((sgi * 7) % 16, sgi));
        assert_eq!(seen, expected, "{version:?}");
    }
}

#[test]
fn a_more_urgent_interrupt_displaces_a_pending_one_when_registers_are_full() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let enable = gic.private(0, ISENABLER);
    gic.write(0, enable, W4, 0xffff);
    for sgi in 0..16u32 {
        let frame = gic.private(0, IPRIORITYR + sgi);
        gic.write(0, frame, W1, 0x80);
    }
    let frame = gic.private(0, IPRIORITYR + 15);
    gic.write(0, frame, W1, 0x10);
    for sgi in 0..4 {
        gic.send_sgi(0, sgi, 1);
    }
    gic.flush(0);
    gic.send_sgi(0, 15, 1);
    assert!(gic.flush(0), "the displaced SGI still waits");
    assert_eq!(gic.cpus[0].guest_takes(), Some(15));
    assert_eq!(gic.deliver_all(0), vec![0, 1, 2, 3]);
}

#[test]
fn sgis_to_cores_outside_the_partition_go_nowhere() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    for vcpu in 0..2 {
        let enable = gic.private(vcpu, ISENABLER);
        gic.write(vcpu, enable, W4, 0xffff);
    }
    // Aff0 2 and 3, Aff1 1: not vCPUs of this partition.
    let send = |gic: &Harness, value: u64| {
        let mut effects = Effects::default();
        gic.vgic.send_sgi(0, value, &mut effects);
        effects
    };
    assert!(send(&gic, (3 << 24) | 0b1100).wake.is_empty());
    assert!(send(&gic, (3 << 24) | (1 << 16) | 0b1).wake.is_empty());
    assert!(!gic.vgic.needs_flush(0) && !gic.vgic.needs_flush(1));
    // To its sibling: vCPU 1 is woken.
    assert_eq!(send(&gic, (3 << 24) | 0b10).wake, VcpuSet::of(1));
}

#[test]
fn spis_the_partition_does_not_own_read_as_zero_and_ignore_writes() {
    for version in BOTH {
        let mut gic = Harness::new(version, 2, vec![(PL011_SPI, false)]);
        let register = |bank: u32, intid: u32| Frame::Distributor {
            offset: bank + intid / 32 * 4,
        };
        // INTID 40: not owned; INTID 33: the partition's PL011 line.
        let bits = (1u64 << (40 - 32)) | (1 << (PL011_SPI - 32));
        gic.write(0, register(ISENABLER, 40), W4, bits);
        gic.write(0, register(ISPENDR, 40), W4, bits);
        let priority = Frame::Distributor {
            offset: IPRIORITYR + 40,
        };
        gic.write(0, priority, W1, 0x20);
        assert_eq!(
            gic.read(0, register(ISENABLER, 40), W4),
            1 << (PL011_SPI - 32),
            "{version:?}: only the owned SPI is enabled"
        );
        assert_eq!(gic.read(0, priority, W1), 0);
        assert_eq!(gic.deliver_all(0), vec![PL011_SPI]);
        // Beyond the distributor's lines: nothing at all.
        gic.write(0, register(ISENABLER, 900), W4, u64::from(u32::MAX));
        assert_eq!(gic.read(0, register(ISENABLER, 900), W4), 0);
    }
}

#[test]
fn a_disabled_interrupt_waits_until_enabled_and_an_spi_follows_its_target() {
    let mut gic = Harness::two_vcpus(GicVersion::V2);
    assert_eq!(
        gic.vgic.inject(0, PL011_SPI),
        None,
        "disabled: nobody woken"
    );
    let target = Frame::Distributor {
        offset: ITARGETSR + PL011_SPI,
    };
    gic.write(1, target, W1, 0b10);
    let effects = gic.set_bit(0, ISENABLER, PL011_SPI);
    assert_eq!(effects.wake, VcpuSet::of(1), "routed to vCPU 1");
    assert_eq!(gic.read(0, target, W1), 0b10);
    // GICv2's banked ITARGETSR0-7 read as the reader's own bit.
    assert_eq!(
        gic.read(1, Frame::Distributor { offset: ITARGETSR }, W1),
        0b10
    );
    gic.set_bit(0, ICENABLER, PL011_SPI);
    assert!(!gic.bit(0, ISENABLER, PL011_SPI));
}

#[test]
fn an_sgi_whose_previous_instance_is_active_is_made_pending_and_active() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, 2);
    gic.send_sgi(0, 2, 1);
    gic.flush(0);
    let index = gic.cpus[0].guest_acknowledges().unwrap();
    gic.send_sgi(0, 2, 1);
    gic.flush(0);
    assert_eq!(gic.cpus[0].read(index).state, LrState::PendingActive);
}

#[test]
fn the_virtual_timer_is_listed_hardware_linked() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    assert_eq!(gic.vgic.inject(0, VIRTUAL_TIMER_INTID), Some(0));
    gic.flush(0);
    let timer = gic.cpus[0].read(0);
    assert!(timer.hw && timer.intid == VIRTUAL_TIMER_INTID);
    assert_eq!(
        timer.encode(GicVersion::V3) >> 32 & 0x1fff,
        u64::from(VIRTUAL_TIMER_INTID),
        "the physical INTID is the same"
    );
}

#[test]
fn a_timer_that_fires_while_its_vcpu_runs_goes_straight_into_a_free_list_register() {
    // GICv3: the fast path is off on GICv2 (see `Vgic::inject_running`).
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    // Disabled: held in software, not forwarded.
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, true, &mut gic.cpus[0]);
    assert_eq!(gic.cpus[0].empty(), 0b1111, "disabled");
    // Enabled, it comes from software as usual.
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    assert_eq!(gic.deliver_all(0), [VIRTUAL_TIMER_INTID]);
    // Enabled, nothing waiting: in a list register, hardware-linked,
    // with no fill needed.
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, true, &mut gic.cpus[0]);
    assert!(!gic.vgic.needs_flush(0), "no fill");
    let lr = gic.cpus[0].read(0);
    assert!(lr.hw && lr.intid == VIRTUAL_TIMER_INTID && lr.state == LrState::Pending);
    assert_eq!(gic.cpus[0].guest_takes(), Some(VIRTUAL_TIMER_INTID));
    // More pending than list registers: it waits its turn in software.
    let enable = gic.private(0, ISENABLER);
    gic.write(0, enable, W4, 0xffff | 1 << VIRTUAL_TIMER_INTID);
    for sgi in 0..16 {
        gic.send_sgi(0, sgi, 1);
    }
    gic.flush(0);
    assert!(gic.vgic.needs_flush(0), "SGIs still waiting");
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, true, &mut gic.cpus[0]);
    let mut delivered = gic.deliver_all(0);
    delivered.sort_unstable();
    let expected: Vec<u32> = (0..16).chain([VIRTUAL_TIMER_INTID]).collect();
    assert_eq!(delivered, expected, "each once");
}

#[test]
fn redistributors_identify_their_vcpu_and_wake() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let typer =
        |gic: &mut Harness, vcpu| gic.read(vcpu, Frame::Redistributor { vcpu, offset: 8 }, W8);
    assert_eq!(typer(&mut gic, 0), 0);
    assert_eq!(
        typer(&mut gic, 1),
        (1 << 32) | (1 << 8) | (1 << 4),
        "vCPU 1, last"
    );
    // Either half on its own.
    let high = gic.read(
        0,
        Frame::Redistributor {
            vcpu: 1,
            offset: 0xc,
        },
        W4,
    );
    let low = gic.read(0, Frame::Redistributor { vcpu: 1, offset: 8 }, W4);
    assert_eq!((high, low), (1, (1 << 8) | (1 << 4)));
    let waker = Frame::Redistributor {
        vcpu: 0,
        offset: 0x14,
    };
    assert_eq!(gic.read(0, waker, W4), 0b110, "asleep at reset");
    gic.write(0, waker, W4, 0);
    assert_eq!(gic.read(0, waker, W4), 0, "awake");
    assert_eq!(
        frame(&gic.vgic, 0x080a_0000 + 0x2_0000 + 0x10100),
        Some(Frame::Redistributor {
            vcpu: 1,
            offset: 0x10100
        })
    );
    assert_eq!(
        frame(&gic.vgic, 0x080a_0000 + 2 * 0x2_0000),
        None,
        "no third vCPU"
    );
}

#[test]
fn list_registers_round_trip_in_both_formats() {
    for version in BOTH {
        let lr = ListRegister {
            intid: 5,
            state: LrState::PendingActive,
            priority: 0xa8,
            group1: true,
            hw: false,
            source: if version == GicVersion::V2 { 3 } else { 0 },
        };
        assert_eq!(ListRegister::decode(version, lr.encode(version)), lr);
    }
}

#[test]
fn an_interrupt_in_a_list_register_reads_pending_and_a_disable_withdraws_it() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, 3);
        gic.send_sgi(0, 3, 0b01);
        gic.flush(0);
        assert_ne!(
            gic.cpus[0].empty(),
            0b1111,
            "{version:?}: in a list register"
        );
        assert!(gic.bit(0, ISPENDR, 3), "{version:?}: reads pending");
        gic.set_bit(0, ICENABLER, 3);
        assert_eq!(gic.deliver_all(0), [], "{version:?}: withdrawn");
        gic.set_bit(0, ISENABLER, 3);
        assert_eq!(gic.deliver_all(0), [3], "{version:?}: still pending");
    }
}

#[test]
fn active_and_pending_active_read_from_the_readers_list_registers() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, 5);
        gic.send_sgi(0, 5, 0b01);
        gic.flush(0);
        // The guest acknowledges it: active, in the list register.
        gic.cpus[0].guest_acknowledges().unwrap();
        assert!(gic.bit(0, ISACTIVER, 5), "{version:?}: reads active");
        assert!(!gic.bit(0, ISPENDR, 5), "{version:?}: active only");
        gic.flush(0);
        assert_eq!(
            gic.cpus[0].holds(5),
            Some(LrState::Active),
            "{version:?}: listed again"
        );
        // Sent again while the guest handles it: pending and active.
        gic.send_sgi(0, 5, 0b01);
        gic.flush(0);
        assert_eq!(
            gic.cpus[0].holds(5),
            Some(LrState::PendingActive),
            "{version:?}"
        );
        assert!(gic.bit(0, ISACTIVER, 5), "{version:?}: still active");
        assert!(gic.bit(0, ISPENDR, 5), "{version:?}: and pending");
        gic.flush(0);
        // Deactivated and taken again, then ended: neither.
        let index = (0..4).find(|&i| gic.cpus[0].read(i).intid == 5).unwrap();
        gic.cpus[0].guest_deactivates(index);
        assert_eq!(gic.cpus[0].guest_takes(), Some(5));
        assert!(
            !gic.bit(0, ISACTIVER, 5) && !gic.bit(0, ISPENDR, 5),
            "{version:?}: idle"
        );
    }
}

#[test]
fn a_disable_by_another_vcpu_withdraws_an_spi_at_its_next_flush() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, PL011_SPI);
        gic.vgic.inject(0, PL011_SPI);
        gic.flush(0);
        let effects = gic.set_bit(1, ICENABLER, PL011_SPI);
        assert!(
            effects.wake.contains(0),
            "{version:?}: vCPU 0 is made to look again"
        );
        assert_eq!(gic.deliver_all(0), [], "{version:?}: withdrawn");
    }
}

#[test]
fn an_spi_beyond_the_first_word_is_delivered_and_cleared() {
    const VIRTIO_SPI: u32 = 79;
    let mut gic = Harness::new(
        GicVersion::V3,
        2,
        vec![(PL011_SPI, false), (VIRTIO_SPI, true)],
    );
    gic.set_bit(0, ISENABLER, VIRTIO_SPI);
    gic.vgic.inject(0, VIRTIO_SPI);
    assert_eq!(gic.deliver_all(0), [VIRTIO_SPI]);
    assert_eq!(gic.deliver_all(0), [], "delivered once");
}

// ---------------------------------------------------------------------------
// Registers that read back what the architecture says.

#[test]
fn itargetsr_reads_back_masked_to_the_vcpus_and_an_spi_goes_to_one_of_them() {
    let mut gic = Harness::two_vcpus(GicVersion::V2);
    let target = Frame::Distributor {
        offset: ITARGETSR + PL011_SPI,
    };
    gic.write(0, target, W1, 0xff);
    assert_eq!(gic.read(0, target, W1), 0x03, "2 vCPUs: 0xff reads 0x03");
    gic.write(0, target, W1, 0b110);
    assert_eq!(gic.read(0, target, W1), 0b10);
    gic.set_bit(0, ISENABLER, PL011_SPI);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(1), "to vCPU 1");
    assert_eq!(gic.deliver_all(1), [PL011_SPI]);
    // vCPU 1's next flush finds it ended: no longer vCPU 1's.
    gic.flush(1);
    // No vCPU listed: reads 0, routed nowhere until it names one.
    gic.write(0, target, W1, 0b1100);
    assert_eq!(gic.read(0, target, W1), 0);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), None);
    let effects = gic.write(0, target, W1, 0b01);
    assert!(effects.wake.contains(0), "pending, now routed");
    assert_eq!(gic.deliver_all(0), [PL011_SPI]);
}

#[test]
fn a_single_vcpu_gicv2_has_raz_wi_targets_and_every_spi_goes_to_vcpu_0() {
    let mut gic = Harness::new(GicVersion::V2, 1, vec![(PL011_SPI, false)]);
    let target = Frame::Distributor {
        offset: ITARGETSR + PL011_SPI,
    };
    gic.write(0, target, W1, 0b10);
    assert_eq!(gic.read(0, target, W1), 0, "RAZ/WI");
    assert_eq!(gic.read(0, Frame::Distributor { offset: ITARGETSR }, W4), 0);
    gic.set_bit(0, ISENABLER, PL011_SPI);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(0));
    assert_eq!(gic.deliver_all(0), [PL011_SPI]);
}

#[test]
fn irouter_reads_back_its_affinity_through_either_half_and_unknown_affinities_route_nowhere() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let router = |intid: u32, high: bool| Frame::Distributor {
        offset: 0x6000 + 8 * intid + if high { 4 } else { 0 },
    };
    // Aff3 0x12, Aff2 0x34, Aff1 0x56, Aff0 1, IRM and RES0 bits set.
    let value = 0xffff_ff12_ff34_5601;
    gic.write(0, router(PL011_SPI, false), W8, value);
    assert_eq!(
        gic.read(0, router(PL011_SPI, false), W8),
        0x12_0034_5601,
        "Aff3-Aff0 as written; IRM (No1N) and RES0 read 0"
    );
    assert_eq!(gic.read(0, router(PL011_SPI, true), W4), 0x12);
    assert_eq!(gic.read(0, router(PL011_SPI, false), W4), 0x34_5601);
    gic.set_bit(0, ISENABLER, PL011_SPI);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), None, "no such vCPU");
    // The halves one at a time: upper first, then lower.
    gic.write(0, router(PL011_SPI, true), W4, 0);
    assert_eq!(gic.read(0, router(PL011_SPI, false), W8), 0x34_5601);
    let effects = gic.write(0, router(PL011_SPI, false), W4, 1);
    assert_eq!(gic.read(0, router(PL011_SPI, false), W8), 1);
    assert!(effects.wake.contains(1), "pending, now routed to vCPU 1");
    assert_eq!(gic.deliver_all(1), [PL011_SPI]);
    // GICD_TYPER says No1N.
    let typer = gic.read(0, Frame::Distributor { offset: 4 }, W4);
    assert_ne!(typer & (1 << 25), 0, "No1N");
}

#[test]
fn isactiver_and_icactiver_set_and_clear_active_state() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, 6);
        gic.set_bit(0, ISACTIVER, 6);
        assert!(
            gic.bit(0, ISACTIVER, 6),
            "{version:?}: reads active after ISACTIVER"
        );
        gic.flush(0);
        assert_eq!(
            gic.cpus[0].holds(6),
            Some(LrState::Active),
            "{version:?}: listed so the guest can end it"
        );
        // Acknowledged, then cleared by the guest through ICACTIVER.
        gic.send_sgi(0, 7, 1);
        gic.set_bit(0, ISENABLER, 7);
        gic.flush(0);
        gic.cpus[0].guest_acknowledges().unwrap();
        assert!(gic.bit(0, ISACTIVER, 7));
        gic.set_bit(0, ICACTIVER, 7);
        gic.set_bit(0, ICACTIVER, 6);
        assert!(
            !gic.bit(0, ISACTIVER, 7) && !gic.bit(0, ISACTIVER, 6),
            "{version:?}: ICACTIVER clears it"
        );
        gic.flush(0);
        assert_eq!(
            gic.cpus[0].empty(),
            0b1111,
            "{version:?}: nothing left listed"
        );
    }
}

#[test]
fn the_pending_and_active_state_of_another_vcpus_spi_needs_that_vcpu_parked() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let word = |bank: u32| Frame::Distributor {
        offset: bank + PL011_SPI / 32 * 4,
    };
    // Routed to vCPU 0 (reset): vCPU 1's access to its state involves 0.
    for bank in [ISPENDR, ICPENDR, ISACTIVER, ICACTIVER] {
        for write in [false, true] {
            assert_eq!(
                gic.vgic.involved(1, word(bank), W4, write),
                VcpuSet::of(0),
                "bank {bank:#x}, write {write}"
            );
        }
        assert!(
            gic.vgic.involved(0, word(bank), W4, true).is_empty(),
            "its own"
        );
    }
    assert!(gic.vgic.involved(1, word(ISENABLER), W4, true).is_empty());
    assert!(gic.vgic.involved(1, word(IPRIORITYR), W4, true).is_empty());
    // Moving it away from vCPU 0 involves vCPU 0.
    let router = Frame::Distributor {
        offset: 0x6000 + 8 * PL011_SPI,
    };
    assert_eq!(gic.vgic.involved(1, router, W8, true), VcpuSet::of(0));
    assert!(gic.vgic.involved(1, router, W8, false).is_empty());
    // Another redistributor's pending and active banks.
    let other = private_frame(GicVersion::V3, 0, ISACTIVER);
    assert_eq!(gic.vgic.involved(1, other, W4, false), VcpuSet::of(0));
    let other = private_frame(GicVersion::V3, 0, ISENABLER);
    assert!(gic.vgic.involved(1, other, W4, true).is_empty());
    // Parked, vCPU 0's active SPI is in software: vCPU 1 reads and clears it.
    gic.set_bit(0, ISENABLER, PL011_SPI);
    gic.vgic.inject(0, PL011_SPI);
    gic.flush(0);
    gic.cpus[0].guest_acknowledges().unwrap();
    assert!(gic.vgic.rendezvous.try_hold(1));
    gic.vgic.rendezvous.request(VcpuSet::of(0));
    gic.vgic.park(0, &mut gic.cpus[0]);
    assert!(gic.vgic.rendezvous.all_parked());
    assert!(gic.bit(1, ISACTIVER, PL011_SPI));
    gic.set_bit(1, ICACTIVER, PL011_SPI);
    gic.vgic.rendezvous.release();
    assert!(!gic.bit(0, ISACTIVER, PL011_SPI));
    gic.flush(0);
    assert_eq!(gic.cpus[0].holds(PL011_SPI), None, "ended");
}

// ---------------------------------------------------------------------------
// Hardware-linked interrupts: one model.

#[test]
fn pending_set_while_the_timer_is_active_fires_again_once_the_guest_ends_it() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
        gic.cpus[0].take_physical();
        gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
        gic.flush(0);
        let index = gic.cpus[0].guest_acknowledges().unwrap();
        // The guest sets it pending while it is active.
        gic.set_bit(0, ISPENDR, VIRTUAL_TIMER_INTID);
        assert_eq!(
            gic.cpus[0].take_physical(),
            [(VIRTUAL_TIMER_INTID, StateChange::SetPending)],
            "{version:?}: the physical PPI holds the pending state"
        );
        let waiting = gic.flush(0);
        assert!(
            !waiting,
            "{version:?}: no maintenance for what only the guest's deactivation releases"
        );
        assert_eq!(
            gic.cpus[0].holds(VIRTUAL_TIMER_INTID),
            Some(LrState::Active)
        );
        let index = (0..4)
            .find(|&i| gic.cpus[0].read(i).intid == VIRTUAL_TIMER_INTID)
            .unwrap_or(index);
        gic.cpus[0].guest_deactivates(index);
        // The physical PPI fires again: injected like any firing, once.
        gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
        assert_eq!(gic.deliver_all(0), [VIRTUAL_TIMER_INTID], "{version:?}");
        assert_eq!(gic.deliver_all(0), [], "{version:?}: once");
    }
}

#[test]
fn clearing_a_fired_timers_pending_state_deactivates_the_physical_ppi() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
    gic.flush(0);
    gic.cpus[0].take_physical();
    gic.set_bit(0, ICPENDR, VIRTUAL_TIMER_INTID);
    assert_eq!(
        gic.cpus[0].take_physical(),
        [
            (VIRTUAL_TIMER_INTID, StateChange::ClearPending),
            (VIRTUAL_TIMER_INTID, StateChange::Deactivate)
        ],
        "the next expiry can fire"
    );
    assert!(!gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID));
    assert_eq!(gic.deliver_all(0), []);
}

#[test]
fn the_timer_is_level_sensitive_its_line_is_sampled() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    // Disabled in the GIC: the physical PPI is disabled too.
    gic.set_bit(0, ICENABLER, VIRTUAL_TIMER_INTID);
    assert_eq!(
        gic.cpus[0].take_physical(),
        [(VIRTUAL_TIMER_INTID, StateChange::Disable)]
    );
    // Line high: reads pending.
    gic.vgic.sample_timer(0, true, &mut gic.cpus[0]);
    assert!(
        gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID),
        "pending with the line high"
    );
    // CNTV_CTL_EL0 = 0: not pending.
    gic.vgic.sample_timer(0, false, &mut gic.cpus[0]);
    assert!(
        !gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID),
        "not pending once it drops"
    );
    // Enabled: nothing comes.
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    assert_eq!(
        gic.cpus[0].take_physical(),
        [(VIRTUAL_TIMER_INTID, StateChange::Enable)]
    );
    assert_eq!(gic.deliver_all(0), []);
}

#[test]
fn a_timer_injected_then_dropped_by_its_line_is_withdrawn_and_deactivated() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
        gic.vgic.sample_timer(0, true, &mut gic.cpus[0]);
        gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
        gic.flush(0);
        assert_eq!(
            gic.cpus[0].holds(VIRTUAL_TIMER_INTID),
            Some(LrState::Pending)
        );
        gic.cpus[0].take_physical();
        // The guest turned its timer off before taking the interrupt.
        gic.vgic.sample_timer(0, false, &mut gic.cpus[0]);
        assert_eq!(
            gic.cpus[0].holds(VIRTUAL_TIMER_INTID),
            None,
            "{version:?}: withdrawn"
        );
        assert_eq!(
            gic.cpus[0].take_physical(),
            [
                (VIRTUAL_TIMER_INTID, StateChange::ClearPending),
                (VIRTUAL_TIMER_INTID, StateChange::Deactivate)
            ],
            "{version:?}: the physical PPI can fire again, and nothing latched stays"
        );
        assert_eq!(gic.deliver_all(0), [], "{version:?}: never delivered stale");
    }
}

#[test]
fn a_timer_set_pending_by_the_guest_survives_a_low_line_until_taken() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    gic.set_bit(0, ISPENDR, VIRTUAL_TIMER_INTID);
    gic.vgic.sample_timer(0, false, &mut gic.cpus[0]);
    assert!(gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID), "latched");
    assert_eq!(gic.deliver_all(0), [VIRTUAL_TIMER_INTID]);
    // Taken: the latch is spent, and a later firing dropped by its line
    // is withdrawn again.
    gic.vgic.sample_timer(0, false, &mut gic.cpus[0]);
    gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
    gic.vgic.sample_timer(0, false, &mut gic.cpus[0]);
    assert_eq!(gic.deliver_all(0), []);
}

#[test]
fn a_passthrough_spi_follows_the_same_model() {
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        gic.set_bit(0, ISENABLER, DEVICE_SPI);
        gic.vgic.inject(0, DEVICE_SPI);
        gic.flush(0);
        gic.cpus[0].take_physical();
        // Cleared before it is taken: the physical SPI is deactivated.
        gic.set_bit(0, ICPENDR, DEVICE_SPI);
        assert_eq!(
            gic.cpus[0].take_physical(),
            [
                (DEVICE_SPI, StateChange::ClearPending),
                (DEVICE_SPI, StateChange::Deactivate)
            ],
            "{version:?}"
        );
        // Fires again, is taken; pended while active: physical pending.
        gic.vgic.inject(0, DEVICE_SPI);
        gic.flush(0);
        gic.cpus[0].guest_acknowledges().unwrap();
        gic.set_bit(0, ISPENDR, DEVICE_SPI);
        assert_eq!(
            gic.cpus[0].take_physical(),
            [(DEVICE_SPI, StateChange::SetPending)],
            "{version:?}"
        );
        assert!(
            !gic.flush(0),
            "{version:?}: nothing waits for a list register"
        );
        // ISACTIVER and ICACTIVER reach the physical SPI.
        let index = (0..4)
            .find(|&i| gic.cpus[0].read(i).intid == DEVICE_SPI)
            .unwrap();
        gic.cpus[0].guest_deactivates(index);
        gic.cpus[0].take_physical();
        gic.set_bit(0, ISACTIVER, DEVICE_SPI);
        gic.set_bit(0, ICACTIVER, DEVICE_SPI);
        assert_eq!(
            gic.cpus[0].take_physical(),
            [
                (DEVICE_SPI, StateChange::Activate),
                (DEVICE_SPI, StateChange::Deactivate)
            ],
            "{version:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Access widths, and a sweep of every register at every width.

/// The widths the architecture (and docs/partitions.md) gives each offset:
/// written from the rule, independently of the register tables.
fn allowed(version: GicVersion, frame: Frame, width: AccessWidth) -> bool {
    let (offset, rd_base) = match frame {
        Frame::Distributor { offset } => (offset, false),
        Frame::Redistributor { offset, .. } => {
            (u32::try_from(offset % 0x1_0000).unwrap(), offset < 0x1_0000)
        }
    };
    if !width.aligns(u64::from(offset)) {
        return false;
    }
    let distributor = matches!(frame, Frame::Distributor { .. });
    let v2 = version == GicVersion::V2;
    let register = if rd_base {
        matches!(offset, 0x0 | 0x4 | 0x8 | 0xc | 0x10 | 0x14 | 0xffe8)
    } else if distributor {
        matches!(offset, 0x0..=0x8 | 0x80..=0x7ff | 0xc00..=0xcff)
            || (v2 && matches!(offset, 0x800..=0xbff | 0xf00 | 0xf10..=0xf2f | 0xfe8))
            || (!v2 && matches!(offset, 0x6000..=0x7fff | 0xffe8))
    } else {
        matches!(offset, 0x80..=0x7ff | 0xc00..=0xcff)
    };
    let double =
        (distributor && !v2 && (0x6000..0x8000).contains(&offset)) || (rd_base && offset == 0x8);
    let byte = (0x400..0x800).contains(&offset)
        || (distributor
            && v2
            && ((0x800..0xc00).contains(&offset) || (0xf10..0xf30).contains(&offset)));
    register
        && match width {
            AccessWidth::Word => true,
            AccessWidth::Double => double,
            AccessWidth::Byte => byte,
            AccessWidth::Half => false,
        }
}

/// A fixed-seed generator: the sweep is the same every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every offset of `frames`, at every width, read then written with a
/// random value by `vcpu`: a width the rule does not give reads 0 and
/// changes nothing; one it gives reads what the 32-bit register holds
/// (narrower: its slice; 64-bit: both halves). Runs with overflow checks,
/// so a shift or sum that overflows on any guest value panics here.
fn sweep(
    gic: &mut Harness,
    vcpu: usize,
    frames: impl Iterator<Item = Frame>,
    random: &mut XorShift,
) {
    let version = gic.version();
    let mut before = gic.vgic.state.lock().clone();
    for frame in frames {
        for width in AccessWidth::ALL {
            let word_frame = |frame: Frame, delta: u32| match frame {
                Frame::Distributor { offset } => Frame::Distributor {
                    offset: (offset & !3) + delta,
                },
                Frame::Redistributor { vcpu, offset } => Frame::Redistributor {
                    vcpu,
                    offset: (offset & !3) + u64::from(delta),
                },
            };
            let _ = gic.vgic.involved(vcpu, frame, width, true);
            let value = gic.read(vcpu, frame, width);
            if !allowed(version, frame, width) {
                assert_eq!(value, 0, "{version:?} {frame:x?} {width:?}: read as zero");
                let effects = gic.write(vcpu, frame, width, random.next());
                assert_eq!(
                    effects,
                    Effects::default(),
                    "{version:?} {frame:x?} {width:?}: no effects"
                );
                assert!(
                    *gic.vgic.state.lock() == before,
                    "{version:?} {frame:x?} {width:?}: a write at a width the register does not take changed the state"
                );
                continue;
            }
            match width {
                AccessWidth::Byte => {
                    let byte = match frame {
                        Frame::Distributor { offset } => offset % 4,
                        Frame::Redistributor { offset, .. } => u32::try_from(offset % 4).unwrap(),
                    };
                    let word = gic.read(vcpu, word_frame(frame, 0), AccessWidth::Word);
                    assert_eq!(
                        value,
                        (word >> (8 * byte)) & 0xff,
                        "{version:?} {frame:x?}: a byte of its word"
                    );
                }
                AccessWidth::Double => {
                    let low = gic.read(vcpu, word_frame(frame, 0), AccessWidth::Word);
                    let high = gic.read(vcpu, word_frame(frame, 4), AccessWidth::Word);
                    assert_eq!(
                        value,
                        low | high << 32,
                        "{version:?} {frame:x?}: both halves"
                    );
                }
                _ => assert!(
                    value <= u64::from(u32::MAX),
                    "{version:?} {frame:x?}: 32 bits"
                ),
            }
            gic.write(vcpu, frame, width, random.next());
            // Whatever it changed, a flush and the guest taking everything
            // must cope with it.
            gic.deliver_all(vcpu);
            before = gic.vgic.state.lock().clone();
        }
    }
}

#[test]
fn every_register_at_every_width_as_every_vcpu_matches_the_width_rule() {
    let mut random = XorShift(0x7e55_e7a0_1234_5678);
    for version in BOTH {
        let mut gic = Harness::two_vcpus(version);
        for vcpu in 0..2 {
            let gicd_size = match version {
                GicVersion::V3 => 0x1_0000,
                GicVersion::V2 => 0x1000,
            };
            sweep(
                &mut gic,
                vcpu,
                (0..gicd_size).map(|offset| Frame::Distributor { offset }),
                &mut random,
            );
            if version == GicVersion::V3 {
                for of in 0..2 {
                    sweep(
                        &mut gic,
                        vcpu,
                        (0..0x2_0000u64).map(|offset| Frame::Redistributor { vcpu: of, offset }),
                        &mut random,
                    );
                }
            }
        }
    }
}

#[test]
fn the_largest_gicv3_partition_takes_sgis_on_every_vcpu() {
    let mut gic = Harness::new(GicVersion::V3, 16, vec![(PL011_SPI, false)]);
    for vcpu in 0..16 {
        gic.set_bit(vcpu, ISENABLER, 1);
    }
    // From vCPU 15 to all 16 (TargetList bits 0-15).
    let effects = gic.send_sgi(15, 1, 0xffff);
    assert_eq!(effects.wake, VcpuSet::first(16));
    for vcpu in 0..16 {
        assert_eq!(gic.deliver_all(vcpu), [1], "vCPU {vcpu}");
    }
    assert_eq!(
        gic.read(
            0,
            Frame::Redistributor {
                vcpu: 15,
                offset: 8
            },
            W8
        ),
        (15 << 32) | (15 << 8) | (1 << 4),
        "vCPU 15's redistributor is the last"
    );
}

#[test]
fn an_active_spi_is_listed_again_only_where_it_is_active() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let router = Frame::Distributor {
        offset: 0x6000 + 8 * PL011_SPI,
    };
    gic.write(0, router, W8, 1);
    gic.set_bit(0, ISENABLER, PL011_SPI);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(1));
    gic.flush(1);
    gic.cpus[1].guest_acknowledges().unwrap();
    // vCPU 1 reads its state (its handler): taken back, active in software.
    assert!(gic.bit(1, ISACTIVER, PL011_SPI));
    // Moved to vCPU 0 meanwhile: it stays with vCPU 1 while active.
    gic.write(0, router, W8, 0);
    assert_eq!(gic.vgic.involved(0, router, W8, true), VcpuSet::of(1));
    gic.flush(0);
    assert_eq!(
        gic.cpus[0].holds(PL011_SPI),
        None,
        "vCPU 0 never acknowledged it"
    );
    gic.flush(1);
    assert_eq!(
        gic.cpus[1].holds(PL011_SPI),
        Some(LrState::Active),
        "listed where the guest ends it"
    );
    let index = (0..4)
        .find(|&i| gic.cpus[1].read(i).intid == PL011_SPI)
        .unwrap();
    gic.cpus[1].guest_deactivates(index);
    // Ended: raised again, it goes to vCPU 1 first (it may still hold it),
    // whose flush finds it gone and hands it on to where it is routed now.
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(1));
    let flushed = gic.vgic.flush(1, &mut gic.cpus[1]);
    assert_eq!(flushed.wake, VcpuSet::of(0), "vCPU 0 is kicked");
    assert_eq!(gic.cpus[1].holds(PL011_SPI), None);
    assert_eq!(gic.deliver_all(0), [PL011_SPI]);
}

#[test]
fn a_hardware_linked_interrupt_reads_pending_only_while_it_is() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, DEVICE_SPI);
    gic.vgic.inject(0, DEVICE_SPI);
    gic.flush(0);
    let index = gic.cpus[0].guest_acknowledges().unwrap();
    gic.set_bit(0, ISPENDR, DEVICE_SPI);
    assert!(
        gic.bit(0, ISPENDR, DEVICE_SPI),
        "pending and active: the physical GIC holds it"
    );
    gic.flush(0);
    let index = (0..4)
        .find(|&i| gic.cpus[0].read(i).intid == DEVICE_SPI)
        .unwrap_or(index);
    gic.cpus[0].guest_deactivates(index);
    gic.vgic.inject(0, DEVICE_SPI);
    assert_eq!(gic.deliver_all(0), [DEVICE_SPI]);
    assert!(
        !gic.bit(0, ISPENDR, DEVICE_SPI),
        "taken and ended: not pending"
    );
    // The timer, set pending by the guest, taken and ended: not pending.
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    gic.set_bit(0, ISPENDR, VIRTUAL_TIMER_INTID);
    assert_eq!(gic.deliver_all(0), [VIRTUAL_TIMER_INTID]);
    assert!(!gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID));
}

#[test]
fn pending_in_hardware_is_spent_when_it_fires_through_the_direct_path() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    gic.vgic.inject(0, VIRTUAL_TIMER_INTID);
    gic.flush(0);
    let index = gic.cpus[0].guest_acknowledges().unwrap();
    gic.set_bit(0, ISPENDR, VIRTUAL_TIMER_INTID);
    gic.flush(0);
    let index = (0..4)
        .find(|&i| gic.cpus[0].read(i).intid == VIRTUAL_TIMER_INTID)
        .unwrap_or(index);
    gic.cpus[0].guest_deactivates(index);
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, true, &mut gic.cpus[0]);
    assert_eq!(gic.cpus[0].guest_takes(), Some(VIRTUAL_TIMER_INTID));
    assert!(
        !gic.bit(0, ISPENDR, VIRTUAL_TIMER_INTID),
        "fired, taken and ended: no pending state left"
    );
}

#[test]
fn an_spi_listed_active_stays_with_its_vcpu_when_moved_and_raised_again() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let router = Frame::Distributor {
        offset: 0x6000 + 8 * PL011_SPI,
    };
    gic.set_bit(0, ISENABLER, PL011_SPI);
    gic.vgic.inject(0, PL011_SPI);
    gic.flush(0);
    gic.cpus[0].guest_acknowledges().unwrap();
    // vCPU 1 moves it while vCPU 0 handles it (vCPU 0 parks: taken back),
    // and vCPU 0 lists it active again.
    assert_eq!(gic.vgic.involved(1, router, W8, true), VcpuSet::of(0));
    gic.vgic.park(0, &mut gic.cpus[0]);
    gic.write(1, router, W8, 1);
    gic.flush(0);
    assert_eq!(gic.cpus[0].holds(PL011_SPI), Some(LrState::Active));
    // Raised again before vCPU 0's guest ends it: still vCPU 0's, pending
    // and active there, never listed on vCPU 1 too.
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(0));
    let other = Frame::Distributor {
        offset: ICACTIVER + 4,
    };
    assert_eq!(gic.vgic.involved(1, other, W4, true), VcpuSet::of(0));
    gic.flush(1);
    assert_eq!(gic.cpus[1].holds(PL011_SPI), None, "not listed twice");
    gic.flush(0);
    assert_eq!(gic.cpus[0].holds(PL011_SPI), Some(LrState::PendingActive));
    // Ended there, then taken again there; from then on it goes to vCPU 1.
    let index = (0..4)
        .find(|&i| gic.cpus[0].read(i).intid == PL011_SPI)
        .unwrap();
    gic.cpus[0].guest_deactivates(index);
    assert_eq!(gic.cpus[0].guest_takes(), Some(PL011_SPI));
    gic.flush(0);
    assert_eq!(gic.vgic.inject(0, PL011_SPI), Some(1));
    assert_eq!(gic.deliver_all(1), [PL011_SPI]);
}

#[test]
fn a_timer_that_fired_after_the_guest_turned_it_off_is_not_delivered() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    gic.set_bit(0, ISENABLER, VIRTUAL_TIMER_INTID);
    gic.cpus[0].take_physical();
    // The output dropped before the interrupt was taken at EL2.
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, false, &mut gic.cpus[0]);
    assert_eq!(
        gic.cpus[0].take_physical(),
        [(VIRTUAL_TIMER_INTID, StateChange::Deactivate)],
        "ready for the next expiry"
    );
    assert_eq!(gic.deliver_all(0), [], "nothing stale");
    // Set pending by the guest meanwhile, it is delivered all the same.
    gic.set_bit(0, ISPENDR, VIRTUAL_TIMER_INTID);
    gic.cpus[0].take_physical();
    gic.vgic
        .inject_running(0, VIRTUAL_TIMER_INTID, false, &mut gic.cpus[0]);
    assert_eq!(gic.deliver_all(0), [VIRTUAL_TIMER_INTID]);
}

#[test]
fn a_vcpu_that_stops_releases_the_spis_it_holds() {
    let mut gic = Harness::two_vcpus(GicVersion::V3);
    let router = Frame::Distributor {
        offset: 0x6000 + 8 * PL011_SPI,
    };
    gic.write(0, router, W8, 1);
    gic.set_bit(0, ISENABLER, PL011_SPI);
    gic.vgic.inject(0, PL011_SPI);
    gic.flush(1);
    // vCPU 1 turns off with it listed; it is routed to vCPU 0 meanwhile.
    gic.write(0, router, W8, 0);
    let wake = gic.vgic.vcpu_stopping(1, &mut gic.cpus[1]);
    assert_eq!(wake, VcpuSet::of(0), "still pending: vCPU 0 takes it");
    assert_eq!(gic.deliver_all(0), [PL011_SPI]);
    // Held active by a vCPU that stops: no longer active, routable again.
    gic.vgic.inject(0, PL011_SPI);
    gic.flush(0);
    gic.cpus[0].guest_acknowledges().unwrap();
    gic.vgic.park(0, &mut gic.cpus[0]);
    gic.vgic.rendezvous.release();
    gic.vgic.vcpu_stopping(0, &mut gic.cpus[0]);
    assert!(!gic.bit(1, ISACTIVER, PL011_SPI));
    gic.write(1, router, W8, 1);
    assert_eq!(gic.vgic.inject(1, PL011_SPI), Some(1));
}

/// Which emulated frame guest address `ipa` falls in, as the partition's
/// bus finds it.
fn frame(vgic: &Vgic, ipa: u64) -> Option<Frame> {
    let bus = MmioBus::new(vgic.version, vgic.attention.len());
    match bus.find(ipa)? {
        (Device::GicDistributor, offset) => Frame::distributor(offset),
        (Device::GicRedistributors, offset) => Frame::redistributor(offset),
        (Device::Pl011, _) => None,
    }
}
