//! The virtual GIC against list registers held in memory: what a guest
//! would see delivered, and what its register writes may and may not do.

use super::banks::{ICENABLER, IPRIORITYR, ISACTIVER, ISENABLER, ISPENDR, ITARGETSR};
use super::flush::{self, ListRegisters};
use super::list_register::{ListRegister, LrState};
use super::{Frame, VIRTUAL_TIMER_INTID, Vgic};
use crate::hw::gic::GicVersion;

/// Four list registers, as QEMU and the GIC-400 have.
struct FakeRegisters {
    version: GicVersion,
    values: [u64; 4],
}

impl FakeRegisters {
    fn new(version: GicVersion) -> FakeRegisters {
        FakeRegisters {
            version,
            values: [0; 4],
        }
    }

    /// The guest acknowledges the most urgent pending interrupt and
    /// deactivates it, as the virtual CPU interface would.
    fn guest_takes(&mut self) -> Option<u32> {
        let (index, lr) = self
            .values
            .iter()
            .map(|&v| ListRegister::decode(self.version, v))
            .enumerate()
            .filter(|(_, lr)| lr.state.is_pending())
            .min_by_key(|(_, lr)| (lr.priority, lr.intid))?;
        self.values[index] = 0;
        Some(lr.intid)
    }
}

impl ListRegisters for FakeRegisters {
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
}

const GICD_CTLR_BOTH_GROUPS: u64 = 0b11;
const PL011_SPI: u32 = 33;

fn gic(version: GicVersion) -> Vgic {
    let vgic = Vgic::new(version, 2, vec![(PL011_SPI, false)]);
    vgic.write(
        0,
        Frame::Distributor { offset: 0 },
        4,
        GICD_CTLR_BOTH_GROUPS,
    );
    vgic
}

/// A read by a vCPU whose list registers hold nothing.
fn read(vgic: &Vgic, vcpu: usize, frame: Frame, width: u32) -> u64 {
    vgic.read(vcpu, frame, width, &[])
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

/// Delivers everything pending to vCPU 0, refilling the list registers
/// whenever the guest has taken one, and returns the INTIDs in the order
/// the guest saw them.
fn deliver_all(vgic: &Vgic, registers: &mut FakeRegisters) -> Vec<u32> {
    let mut seen = Vec::new();
    loop {
        if vgic.needs_flush(0) {
            vgic.flush(0, registers);
        }
        match registers.guest_takes() {
            Some(intid) => seen.push(intid),
            None => return seen,
        }
    }
}

#[test]
fn a_burst_beyond_the_list_registers_is_delivered_once_each_in_priority_order() {
    for version in [GicVersion::V3, GicVersion::V2] {
        let vgic = gic(version);
        // Enable all 16 SGIs with priorities scrambled against their INTIDs.
        vgic.write(0, private_frame(version, 0, ISENABLER), 4, 0xffff);
        for sgi in 0..16u32 {
            let priority = u64::from(((sgi * 7) % 16) * 8);
            vgic.write(0, private_frame(version, 0, IPRIORITYR + sgi), 1, priority);
        }
        for sgi in 0..16u64 {
            match version {
                GicVersion::V3 => {
                    vgic.send_sgi(1, (sgi << 24) | 0b01);
                }
                GicVersion::V2 => {
                    vgic.write(1, Frame::Distributor { offset: 0xf00 }, 4, (1 << 16) | sgi);
                }
            }
        }
        let mut registers = FakeRegisters::new(version);
        let seen = deliver_all(&vgic, &mut registers);
        let mut expected: Vec<u32> = (0..16).collect();
        expected.sort_by_key(|&sgi| ((sgi * 7) % 16, sgi));
        assert_eq!(seen, expected, "{version:?}");
    }
}

#[test]
fn a_more_urgent_interrupt_displaces_a_pending_one_when_registers_are_full() {
    let version = GicVersion::V3;
    let vgic = gic(version);
    vgic.write(0, private_frame(version, 0, ISENABLER), 4, 0xffff);
    for sgi in 0..16u32 {
        vgic.write(0, private_frame(version, 0, IPRIORITYR + sgi), 1, 0x80);
    }
    vgic.write(0, private_frame(version, 0, IPRIORITYR + 15), 1, 0x10);
    let mut registers = FakeRegisters::new(version);
    for sgi in 0..4u64 {
        vgic.send_sgi(0, (sgi << 24) | 1);
    }
    vgic.flush(0, &mut registers);
    vgic.send_sgi(0, (15 << 24) | 1);
    assert!(
        vgic.flush(0, &mut registers),
        "the displaced SGI still waits"
    );
    assert_eq!(registers.guest_takes(), Some(15));
    let rest = deliver_all(&vgic, &mut registers);
    assert_eq!(rest, vec![0, 1, 2, 3]);
}

#[test]
fn sgis_to_cores_outside_the_partition_go_nowhere() {
    let version = GicVersion::V3;
    let vgic = gic(version);
    for vcpu in 0..2 {
        vgic.write(vcpu, private_frame(version, vcpu, ISENABLER), 4, 0xffff);
    }
    // Aff0 2 and 3, Aff1 1: not vCPUs of this partition.
    let effects = vgic.send_sgi(0, (3 << 24) | 0b1100);
    assert_eq!(effects.wake, 0);
    let effects = vgic.send_sgi(0, (3 << 24) | (1 << 16) | 0b1);
    assert_eq!(effects.wake, 0);
    assert!(!vgic.needs_flush(0) && !vgic.needs_flush(1));
    // To its sibling: vCPU 1 is woken.
    assert_eq!(vgic.send_sgi(0, (3 << 24) | 0b10).wake, 0b10);
}

#[test]
fn spis_the_partition_does_not_own_read_as_zero_and_ignore_writes() {
    for version in [GicVersion::V3, GicVersion::V2] {
        let vgic = gic(version);
        let register = |bank: u32, intid: u32| Frame::Distributor {
            offset: bank + intid / 32 * 4,
        };
        // INTID 40: not owned; INTID 33: the partition's PL011 line.
        let bits = (1u64 << (40 - 32)) | (1 << (PL011_SPI - 32));
        vgic.write(0, register(ISENABLER, 40), 4, bits);
        vgic.write(0, register(ISPENDR, 40), 4, bits);
        vgic.write(
            0,
            Frame::Distributor {
                offset: IPRIORITYR + 40,
            },
            1,
            0x20,
        );
        assert_eq!(
            read(&vgic, 0, register(ISENABLER, 40), 4),
            1 << (PL011_SPI - 32),
            "{version:?}: only the owned SPI is enabled"
        );
        assert_eq!(
            read(
                &vgic,
                0,
                Frame::Distributor {
                    offset: IPRIORITYR + 40
                },
                1
            ),
            0
        );
        let mut registers = FakeRegisters::new(version);
        assert_eq!(deliver_all(&vgic, &mut registers), vec![PL011_SPI]);
        // Beyond the distributor's lines: nothing at all.
        vgic.write(0, register(ISENABLER, 900), 4, u64::from(u32::MAX));
        assert_eq!(read(&vgic, 0, register(ISENABLER, 900), 4), 0);
    }
}

#[test]
fn a_disabled_interrupt_waits_until_enabled_and_an_spi_follows_its_target() {
    let version = GicVersion::V2;
    let vgic = gic(version);
    assert_eq!(vgic.inject(0, PL011_SPI), None, "disabled: nobody woken");
    vgic.write(
        1,
        Frame::Distributor {
            offset: ITARGETSR + PL011_SPI,
        },
        1,
        0b10,
    );
    let effects = vgic.write(
        0,
        Frame::Distributor {
            offset: ISENABLER + 4,
        },
        4,
        1 << 1,
    );
    assert_eq!(effects.wake, 0b10, "routed to vCPU 1");
    assert_eq!(
        read(
            &vgic,
            0,
            Frame::Distributor {
                offset: ITARGETSR + PL011_SPI
            },
            1
        ),
        0b10
    );
    // GICv2's banked ITARGETSR0-7 read as the reader's own bit.
    assert_eq!(
        read(&vgic, 1, Frame::Distributor { offset: ITARGETSR }, 1),
        0b10
    );
    vgic.write(
        0,
        Frame::Distributor {
            offset: ICENABLER + 4,
        },
        4,
        1 << 1,
    );
    assert_eq!(
        read(
            &vgic,
            0,
            Frame::Distributor {
                offset: ISENABLER + 4
            },
            4
        ),
        0
    );
}

#[test]
fn the_virtual_timer_is_hardware_linked_and_an_edge_during_handling_pends_again() {
    let version = GicVersion::V3;
    let vgic = gic(version);
    vgic.write(
        0,
        private_frame(version, 0, ISENABLER),
        4,
        1 << VIRTUAL_TIMER_INTID | 1 << 2,
    );
    let mut registers = FakeRegisters::new(version);
    assert_eq!(vgic.inject(0, VIRTUAL_TIMER_INTID), Some(0));
    vgic.flush(0, &mut registers);
    let timer = registers.read(0);
    assert!(timer.hw && timer.intid == VIRTUAL_TIMER_INTID);
    assert_eq!(
        timer.encode(version) >> 32 & 0x1fff,
        u64::from(VIRTUAL_TIMER_INTID)
    );
    // An SGI whose previous instance is active is made pending and active.
    vgic.send_sgi(0, (2 << 24) | 1);
    vgic.flush(0, &mut registers);
    let mut sgi = registers.read(1);
    sgi.state = LrState::Active;
    registers.write(1, &sgi);
    vgic.send_sgi(0, (2 << 24) | 1);
    vgic.flush(0, &mut registers);
    assert_eq!(registers.read(1).state, LrState::PendingActive);
}

#[test]
fn a_timer_that_fires_while_its_vcpu_runs_goes_straight_into_a_free_list_register() {
    // GICv3: the fast path is off on GICv2 (see `Vgic::inject_running`).
    for version in [GicVersion::V3] {
        let vgic = gic(version);
        let mut registers = FakeRegisters::new(version);
        // Disabled: held in software, not forwarded.
        vgic.inject_running(0, VIRTUAL_TIMER_INTID, &mut registers);
        assert_eq!(registers.empty(), 0b1111, "{version:?}: disabled");
        // Enabled, it comes from software as usual.
        let enable = private_frame(version, 0, ISENABLER);
        vgic.write(0, enable, 4, 1 << VIRTUAL_TIMER_INTID);
        assert_eq!(deliver_all(&vgic, &mut registers), [VIRTUAL_TIMER_INTID]);
        // Enabled, nothing waiting: in a list register, hardware-linked,
        // with no fill needed.
        vgic.inject_running(0, VIRTUAL_TIMER_INTID, &mut registers);
        assert!(!vgic.needs_flush(0), "{version:?}: no fill");
        let lr = registers.read(0);
        assert!(lr.hw && lr.intid == VIRTUAL_TIMER_INTID && lr.state == LrState::Pending);
        assert_eq!(registers.guest_takes(), Some(VIRTUAL_TIMER_INTID));
        // More pending than list registers: it waits its turn in software.
        vgic.write(0, enable, 4, 0xffff);
        for sgi in 0..16 {
            match version {
                GicVersion::V3 => vgic.send_sgi(0, (sgi << 24) | 1),
                GicVersion::V2 => {
                    vgic.write(0, Frame::Distributor { offset: 0xf00 }, 4, (1 << 16) | sgi)
                }
            };
        }
        vgic.flush(0, &mut registers);
        assert!(vgic.needs_flush(0), "{version:?}: SGIs still waiting");
        vgic.inject_running(0, VIRTUAL_TIMER_INTID, &mut registers);
        let mut delivered = deliver_all(&vgic, &mut registers);
        delivered.sort_unstable();
        let expected: Vec<u32> = (0..16).chain([VIRTUAL_TIMER_INTID]).collect();
        assert_eq!(delivered, expected, "{version:?}: each once");
    }
}

#[test]
fn redistributors_identify_their_vcpu_and_wake() {
    let vgic = gic(GicVersion::V3);
    let typer = |vcpu| read(&vgic, vcpu, Frame::Redistributor { vcpu, offset: 8 }, 8);
    assert_eq!(typer(0), 0);
    assert_eq!(typer(1), (1 << 32) | (1 << 8) | (1 << 4), "vCPU 1, last");
    let waker = Frame::Redistributor {
        vcpu: 0,
        offset: 0x14,
    };
    assert_eq!(read(&vgic, 0, waker, 4), 0b110, "asleep at reset");
    vgic.write(0, waker, 4, 0);
    assert_eq!(read(&vgic, 0, waker, 4), 0, "awake");
    assert_eq!(
        vgic.frame(0x080a_0000 + 0x2_0000 + 0x10100),
        Some(Frame::Redistributor {
            vcpu: 1,
            offset: 0x10100
        })
    );
    assert_eq!(
        vgic.frame(0x080a_0000 + 2 * 0x2_0000),
        None,
        "no third vCPU"
    );
}

#[test]
fn list_registers_round_trip_in_both_formats() {
    for version in [GicVersion::V3, GicVersion::V2] {
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
    for version in [GicVersion::V3, GicVersion::V2] {
        let vgic = gic(version);
        let sgi_bit = 1 << 3;
        vgic.write(0, private_frame(version, 0, ISENABLER), 4, sgi_bit);
        match version {
            GicVersion::V3 => vgic.send_sgi(0, (3 << 24) | 0b01),
            GicVersion::V2 => vgic.write(0, Frame::Distributor { offset: 0xf00 }, 4, (1 << 16) | 3),
        };
        let mut registers = FakeRegisters::new(version);
        vgic.flush(0, &mut registers);
        assert_ne!(registers.empty(), 0b1111, "{version:?}: in a list register");
        // A trapped access first takes unacknowledged interrupts back.
        vgic.take_back(0, &mut registers);
        let pending = read(&vgic, 0, private_frame(version, 0, ISPENDR), 4);
        assert_eq!(pending & sgi_bit, sgi_bit, "{version:?}: reads pending");
        vgic.take_back(0, &mut registers);
        vgic.write(0, private_frame(version, 0, ICENABLER), 4, sgi_bit);
        assert_eq!(
            deliver_all(&vgic, &mut registers),
            [],
            "{version:?}: withdrawn"
        );
        vgic.write(0, private_frame(version, 0, ISENABLER), 4, sgi_bit);
        assert_eq!(
            deliver_all(&vgic, &mut registers),
            [3],
            "{version:?}: still pending"
        );
    }
}

#[test]
fn active_and_pending_active_read_from_the_readers_list_registers() {
    for version in [GicVersion::V3, GicVersion::V2] {
        let vgic = gic(version);
        let sgi_bit = 1 << 5;
        vgic.write(0, private_frame(version, 0, ISENABLER), 4, sgi_bit);
        let send = || match version {
            GicVersion::V3 => vgic.send_sgi(0, (5 << 24) | 0b01),
            GicVersion::V2 => vgic.write(0, Frame::Distributor { offset: 0xf00 }, 4, (1 << 16) | 5),
        };
        send();
        let mut registers = FakeRegisters::new(version);
        vgic.flush(0, &mut registers);
        // The guest acknowledges it: active, in the list register.
        let mut lr = registers.read(0);
        assert_eq!(lr.intid, 5, "{version:?}");
        lr.state = LrState::Active;
        registers.write(0, &lr);
        let bits = |registers: &mut FakeRegisters, bank| {
            vgic.take_back(0, registers);
            let held = flush::held(registers);
            vgic.read(0, private_frame(version, 0, bank), 4, &held) & sgi_bit
        };
        assert_eq!(
            bits(&mut registers, ISACTIVER),
            sgi_bit,
            "{version:?}: reads active"
        );
        assert_eq!(bits(&mut registers, ISPENDR), 0, "{version:?}: active only");
        // Sent again while the guest handles it: pending and active.
        send();
        vgic.flush(0, &mut registers);
        assert_eq!(
            registers.read(0).state,
            LrState::PendingActive,
            "{version:?}"
        );
        assert_eq!(
            bits(&mut registers, ISACTIVER),
            sgi_bit,
            "{version:?}: still active"
        );
        assert_eq!(
            bits(&mut registers, ISPENDR),
            sgi_bit,
            "{version:?}: and pending"
        );
        // Deactivated and taken again, then ended: neither.
        assert_eq!(registers.guest_takes(), Some(5));
        assert_eq!(
            bits(&mut registers, ISACTIVER) | bits(&mut registers, ISPENDR),
            0,
            "{version:?}: idle"
        );
    }
}

#[test]
fn a_disable_by_another_vcpu_withdraws_an_spi_at_its_next_flush() {
    for version in [GicVersion::V3, GicVersion::V2] {
        let vgic = gic(version);
        let spi_word = private_frame(version, 0, ISENABLER + 4);
        vgic.write(0, spi_word, 4, 1 << (PL011_SPI - 32));
        vgic.inject(0, PL011_SPI);
        let mut registers = FakeRegisters::new(version);
        vgic.flush(0, &mut registers);
        let effects = vgic.write(
            1,
            Frame::Distributor {
                offset: ICENABLER + 4,
            },
            4,
            1 << (PL011_SPI - 32),
        );
        assert_eq!(
            effects.wake & 1,
            1,
            "{version:?}: vCPU 0 is made to look again"
        );
        assert_eq!(
            deliver_all(&vgic, &mut registers),
            [],
            "{version:?}: withdrawn"
        );
    }
}

#[test]
fn an_spi_beyond_the_first_word_is_delivered_and_cleared() {
    const VIRTIO_SPI: u32 = 79;
    let vgic = Vgic::new(
        GicVersion::V3,
        2,
        vec![(PL011_SPI, false), (VIRTIO_SPI, true)],
    );
    vgic.write(
        0,
        Frame::Distributor { offset: 0 },
        4,
        GICD_CTLR_BOTH_GROUPS,
    );
    let word = ISENABLER + 4 * (VIRTIO_SPI / 32);
    vgic.write(
        0,
        Frame::Distributor { offset: word },
        4,
        1 << (VIRTIO_SPI % 32),
    );
    vgic.inject(0, VIRTIO_SPI);
    let mut registers = FakeRegisters::new(GicVersion::V3);
    assert_eq!(deliver_all(&vgic, &mut registers), [VIRTIO_SPI]);
    assert_eq!(deliver_all(&vgic, &mut registers), [], "delivered once");
}
