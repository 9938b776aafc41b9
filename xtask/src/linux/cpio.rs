//! A writer for the `newc` cpio format that Linux unpacks as an initramfs
//! (Linux `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Every entry is a 110-byte ASCII header (`070701` and thirteen 8-digit
//! hexadecimal fields), the NUL-terminated name padded to a multiple of four
//! bytes (counting the header), then the data padded the same way. The
//! archive ends with an entry named `TRAILER!!!`. Times and owners are zero,
//! so the same inputs always give the same bytes.

/// `c_magic` of the "new ASCII" format without checksums.
const MAGIC: &str = "070701";
const HEADER_SIZE: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `c_mode` (`<sys/stat.h>`).
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being written, entry by entry.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

/// What one header says besides the name and the data.
struct Header {
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            bytes: Vec::new(),
            // Inode 0 is not used: some unpackers treat it as "no inode".
            next_inode: 1,
        }
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn entry(&mut self, name: &str, header: Header, data: &[u8]) {
        let name = name.trim_start_matches('/');
        let inode = if name == TRAILER { 0 } else { self.next_inode };
        self.next_inode += 1;
        let fields = [
            inode,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check (unused in newc)
        ];
        let start = self.bytes.len();
        self.bytes.extend_from_slice(MAGIC.as_bytes());
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        debug_assert_eq!(self.bytes.len() - start, HEADER_SIZE);
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// A directory; its parents must come first.
    pub fn directory(&mut self, path: &str, permissions: u32) {
        let header = Header {
            mode: S_IFDIR | permissions,
            nlink: 2,
            rdev: (0, 0),
        };
        self.entry(path, header, &[]);
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, permissions: u32, data: &[u8]) {
        let header = Header {
            mode: S_IFREG | permissions,
            nlink: 1,
            rdev: (0, 0),
        };
        self.entry(path, header, data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let header = Header {
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
        };
        self.entry(path, header, target.as_bytes());
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) {
        let header = Header {
            mode: S_IFCHR | permissions,
            nlink: 1,
            rdev: (major, minor),
        };
        self.entry(path, header, &[]);
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        let header = Header {
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
        };
        self.entry(TRAILER, header, &[]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry read back: (name, mode, rdev major, rdev minor, data).
    type Entry = (String, u32, u32, u32, Vec<u8>);

    /// A minimal newc reader, written from the format description.
    fn read(mut bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut offset = 0;
        loop {
            assert_eq!(&bytes[..6], MAGIC.as_bytes(), "magic at offset {offset}");
            let field = |i: usize| {
                let text = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(text, 16).unwrap()
            };
            let (mode, size, major, minor, name_size) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_end = HEADER_SIZE + name_size as usize;
            let name = std::str::from_utf8(&bytes[HEADER_SIZE..name_end - 1]).unwrap();
            assert_eq!(bytes[name_end - 1], 0, "{name}: name is NUL-terminated");
            let data_start = name_end.next_multiple_of(4);
            let data_end = data_start + size as usize;
            if name == TRAILER {
                assert_eq!(data_end.next_multiple_of(4), bytes.len(), "trailer is last");
                return entries;
            }
            entries.push((
                name.to_owned(),
                mode,
                major,
                minor,
                bytes[data_start..data_end].to_vec(),
            ));
            let next = data_end.next_multiple_of(4);
            offset += next;
            bytes = &bytes[next..];
        }
    }

    #[test]
    fn entries_read_back_with_type_and_data() {
        let mut archive = Archive::new();
        archive.directory("/bin", 0o755);
        archive.file("/bin/busybox", 0o755, b"\x7fELF...");
        archive.symlink("/bin/sh", "busybox");
        archive.char_device("/dev/console", 0o600, 5, 1);
        let entries = read(&archive.finish());
        assert_eq!(
            entries,
            [
                ("bin".to_owned(), S_IFDIR | 0o755, 0, 0, vec![]),
                (
                    "bin/busybox".to_owned(),
                    S_IFREG | 0o755,
                    0,
                    0,
                    b"\x7fELF...".to_vec()
                ),
                (
                    "bin/sh".to_owned(),
                    S_IFLNK | 0o777,
                    0,
                    0,
                    b"busybox".to_vec()
                ),
                ("dev/console".to_owned(), S_IFCHR | 0o600, 5, 1, vec![]),
            ]
        );
    }

    #[test]
    fn header_fields_are_eight_hex_digits_and_everything_is_4_byte_aligned() {
        let mut archive = Archive::new();
        archive.file("init", 0o755, b"abcde");
        let bytes = archive.finish();
        // "init\0" is 5 bytes: the name ends at 115 and pads to 116.
        assert_eq!(&bytes[..14], b"07070100000001", "magic, then inode 1");
        assert_eq!(&bytes[14..22], b"000081ed", "regular file, mode 0755");
        assert_eq!(&bytes[110..116], b"init\0\0");
        assert_eq!(&bytes[116..124], b"abcde\0\0\0", "data padded to 4 bytes");
        assert!(bytes.len().is_multiple_of(4));
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let build = || {
            let mut archive = Archive::new();
            archive.file("a", 0o644, b"x");
            archive.finish()
        };
        assert_eq!(build(), build(), "no time stamps or host owners leak in");
    }
}
