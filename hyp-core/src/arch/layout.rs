//! The running image's layout, from the linker script's symbols (link.ld).

use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::hyp_map::ImageLayout;

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __boot_stack_guard: u8;
    static __boot_stack_bottom: u8;
    static __image_end: u8;
}

/// The image's sections, by permission.
pub fn image() -> Option<ImageLayout> {
    let start = PhysAddr(&raw const __image_start as u64);
    let text_end = PhysAddr(&raw const __text_end as u64);
    let rodata_end = PhysAddr(&raw const __rodata_end as u64);
    let guard = PhysAddr(&raw const __boot_stack_guard as u64);
    let stack_bottom = PhysAddr(&raw const __boot_stack_bottom as u64);
    let end = PhysAddr(&raw const __image_end as u64);
    Some(ImageLayout {
        text: PhysRange::from_bounds(start, text_end)?,
        rodata: PhysRange::from_bounds(text_end, rodata_end)?,
        data: PhysRange::from_bounds(rodata_end, guard)?,
        stack_guard: PhysRange::from_bounds(guard, stack_bottom)?,
        stacks: PhysRange::from_bounds(stack_bottom, end)?,
    })
}
