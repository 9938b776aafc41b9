//! Kernel modules for the initramfs: found in the unpacked kernel package,
//! decompressed (busybox's `insmod` takes a plain `.ko`), together with the
//! modules they depend on, in an order `insmod` can load them.
//!
//! The package ships no `modules.dep` (Debian's postinst runs depmod), so
//! dependencies come from each module's `.modinfo` section, whose
//! `depends=` entry lists the module names it needs.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection};

/// File name endings of modules, with how each is compressed.
const ENDINGS: [(&str, Compression); 4] = [
    (".ko", Compression::None),
    (".ko.xz", Compression::Xz),
    (".ko.gz", Compression::Gzip),
    (".ko.zst", Compression::Zstd),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Xz,
    Gzip,
    Zstd,
}

/// A module's name as the kernel spells it: file names may use `-` where
/// module names (and `depends=`) use `_`.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name and compression of a module file name, if it is one.
fn parse_file_name(file_name: &str) -> Option<(String, Compression)> {
    // Longest endings first: ".ko.xz" also ends in... nothing shorter, but
    // keep the search order explicit.
    ENDINGS.iter().rev().find_map(|(ending, compression)| {
        file_name
            .strip_suffix(ending)
            .map(|stem| (canonical(stem), *compression))
    })
}

/// Every module file under `dir` (the package's `lib/modules/<release>`), by name.
pub fn index(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut found = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if let Some((name, _)) = entry.file_name().to_str().and_then(parse_file_name) {
                found.insert(name, path);
            }
        }
    }
    Ok(found)
}

/// The module file's ELF bytes, decompressed.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some((_, compression)) = parse_file_name(file_name) else {
        bail!("{} is not a kernel module file", path.display());
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut plain = Vec::new();
    match compression {
        Compression::None => return Ok(bytes),
        Compression::Xz => lzma_rs::xz_decompress(&mut bytes.as_slice(), &mut plain)
            .map_err(|e| anyhow::anyhow!("{}: xz: {e:?}", path.display()))?,
        Compression::Gzip => {
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut plain)
                .with_context(|| format!("{}: gzip", path.display()))?;
        }
        Compression::Zstd => bail!(
            "{}: zstd-compressed modules are not supported (this kernel package is not the one xtask was written for)",
            path.display()
        ),
    }
    Ok(plain)
}

/// The `key=value` entries of a `.modinfo` section (NUL-separated).
pub fn parse_modinfo(section: &[u8]) -> Vec<(String, String)> {
    section
        .split(|&b| b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The modules a module's ELF says it depends on.
pub fn depends(elf: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(elf).context("not an ELF file")?;
    let Some(section) = file.section_by_name(".modinfo") else {
        bail!("no .modinfo section");
    };
    Ok(parse_modinfo(section.data()?)
        .into_iter()
        .filter(|(key, _)| key == "depends")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .filter(|d| !d.is_empty())
                .map(canonical)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// `wanted` and everything they depend on, each after its dependencies:
/// the order in which `insmod` can load them. `depends_of` gives a
/// module's direct dependencies.
pub fn load_order(
    wanted: &[String],
    mut depends_of: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        marks: &mut HashMap<String, Mark>,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
        depends_of: &mut dyn FnMut(&str) -> Result<Vec<String>>,
    ) -> Result<()> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                bail!(
                    "modules depend on each other: {} -> {name}",
                    path.join(" -> ")
                )
            }
            None => {}
        }
        marks.insert(name.to_owned(), Mark::Visiting);
        path.push(name.to_owned());
        for dependency in depends_of(name).with_context(|| format!("module {name}"))? {
            visit(&dependency, marks, order, path, depends_of)?;
        }
        path.pop();
        marks.insert(name.to_owned(), Mark::Done);
        order.push(name.to_owned());
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut order = Vec::new();
    for name in wanted {
        visit(
            &canonical(name),
            &mut marks,
            &mut order,
            &mut Vec::new(),
            &mut depends_of,
        )?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(name, deps)| {
                (
                    (*name).to_owned(),
                    deps.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn order_of(edges: &[(&str, &[&str])], wanted: &[&str]) -> Result<Vec<String>> {
        let graph = graph(edges);
        let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
        load_order(&wanted, |name| {
            graph
                .get(name)
                .cloned()
                .with_context(|| format!("no module {name}"))
        })
    }

    #[test]
    fn dependencies_load_first_and_once() {
        // ext4's real dependencies in Debian's 6.12 kernel.
        let edges: &[(&str, &[&str])] = &[
            ("ext4", &["jbd2", "mbcache", "crc16"]),
            ("jbd2", &[]),
            ("mbcache", &[]),
            ("crc16", &[]),
            ("vfat", &["fat"]),
            ("fat", &[]),
            ("virtio_blk", &[]),
        ];
        assert_eq!(
            order_of(edges, &["virtio_blk", "ext4", "vfat", "jbd2"]).unwrap(),
            [
                "virtio_blk",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4",
                "fat",
                "vfat"
            ]
        );
    }

    #[test]
    fn a_dependency_cycle_is_reported_not_followed_forever() {
        let edges: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"])];
        let error = format!("{:#}", order_of(edges, &["a"]).unwrap_err());
        assert!(error.contains("a -> b -> a"), "{error}");
    }

    #[test]
    fn a_missing_dependency_names_the_module_that_needs_it() {
        let edges: &[(&str, &[&str])] = &[("vfat", &["fat"])];
        let error = format!("{:#}", order_of(edges, &["vfat"]).unwrap_err());
        assert!(
            error.contains("module fat") && error.contains("no module fat"),
            "{error}"
        );
    }

    #[test]
    fn file_names_give_canonical_module_names_and_compression() {
        assert_eq!(
            parse_file_name("nls_iso8859-1.ko.xz"),
            Some(("nls_iso8859_1".to_owned(), Compression::Xz))
        );
        assert_eq!(
            parse_file_name("virtio_blk.ko"),
            Some(("virtio_blk".to_owned(), Compression::None))
        );
        assert_eq!(parse_file_name("modules.order"), None);
    }

    #[test]
    fn modinfo_entries_split_at_nul_and_the_first_equals_sign() {
        let section =
            b"license=GPL\0depends=jbd2,mbcache,crc16\0\0\0name=ext4\0softdep=pre: crypto-crc32c\0";
        let entries = parse_modinfo(section);
        assert!(entries.contains(&("depends".to_owned(), "jbd2,mbcache,crc16".to_owned())));
        assert!(entries.contains(&("softdep".to_owned(), "pre: crypto-crc32c".to_owned())));
        assert_eq!(
            entries.len(),
            4,
            "empty padding entries are skipped: {entries:?}"
        );
    }

    #[test]
    fn xz_modules_are_decompressed() {
        // "hello\n" compressed by `xz --check=crc32` (as Kbuild compresses modules).
        let compressed: &[u8] = &[
            0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01, 0x69, 0x22, 0xde, 0x36, 0x02, 0x00,
            0x21, 0x01, 0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0x01, 0x00, 0x05, 0x68,
            0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x00, 0x00, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x00, 0x01,
            0x1a, 0x06, 0xc5, 0xea, 0xc8, 0x79, 0x90, 0x42, 0x99, 0x0d, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x01, 0x59, 0x5a,
        ];
        let dir = std::env::temp_dir().join(format!("tessera-modules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hello.ko.xz");
        std::fs::write(&path, compressed).unwrap();
        let plain = read(&path);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(plain.unwrap(), b"hello\n");
    }
}
