//! What an overlay may change besides the partitions (host-only: Tessera at
//! boot sees the merged tree, not what the overlay changed in it).
//!
//! Outside `/hypervisor` an overlay may set the `status` of devices it gives
//! to partitions and `/chosen`'s `tessera,*` settings, and nothing else: a
//! change to `/memory`, `/cpus`, the interrupt controller, `/reserved-memory`,
//! `/chosen/stdout-path` or `/psci` would change the machine every partition
//! and Tessera itself run on, and each is reported naming the fragment that
//! made it. Two fragments that define the same partition are reported too:
//! fdtoverlay would merge them property by property into a partition
//! nobody wrote.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use hyp_core::dt::{Fdt, Node};

/// Subtrees an overlay may change freely: the configuration, and the
/// symbol tables overlays carry.
const FREE_SUBTREES: [&str; 4] = [
    "/hypervisor",
    "/__symbols__",
    "/__fixups__",
    "/__local_fixups__",
];
/// Properties an overlay's application may add anywhere.
const BOOKKEEPING: [&str; 2] = ["phandle", "linux,phandle"];

/// Every change `merged` has from `board` that an overlay may not make, and
/// every partition two fragments of `overlay` define, as messages.
/// `given` are the paths of the nodes given to partitions.
pub fn problems(
    board: &Fdt<'_>,
    merged: &Fdt<'_>,
    overlay: &Fdt<'_>,
    given: &[String],
) -> Vec<String> {
    let fragments = fragments(board, overlay);
    let fragment_of = |path: &str| {
        fragments
            .iter()
            .filter(|(_, target)| {
                path == target.as_str()
                    || path.starts_with(&format!("{}/", target.trim_end_matches('/')))
            })
            .max_by_key(|(_, target)| target.len())
            .map_or_else(|| "the overlay".to_owned(), |(name, _)| name.clone())
    };
    let mut problems = Vec::new();
    for node in merged.nodes() {
        let path = node.path().to_string();
        if FREE_SUBTREES
            .iter()
            .any(|free| path == *free || path.starts_with(&format!("{free}/")))
        {
            continue;
        }
        let before = exact_node(board, &path);
        // A board without /chosen gets one for the settings it may have.
        if before.is_none() && path != CHOSEN {
            problems.push(format!("{}: adds node {path}", fragment_of(&path)));
            continue;
        }
        for property in node.properties() {
            let unchanged = before
                .and_then(|before| before.property(property.name))
                .is_some_and(|p| p.value == property.value);
            if unchanged || allowed(&path, property.name, given) {
                continue;
            }
            problems.push(format!(
                "{}: changes {path}'s {}: an overlay may change only /hypervisor, the status of \
                 devices it gives to partitions and /chosen's tessera,* settings",
                fragment_of(&path),
                property.name
            ));
        }
    }
    problems.extend(duplicate_partitions(overlay, &fragments));
    problems
}

const CHOSEN: &str = "/chosen";

/// The node of `fdt` at `path`, every name matched whole (`/foo` is not
/// `/foo@1`, as a lookup by base name would take it).
fn exact_node<'a>(fdt: &Fdt<'a>, path: &str) -> Option<Node<'a>> {
    path.split('/')
        .filter(|part| !part.is_empty())
        .try_fold(fdt.root(), |node, part| {
            node.children().find(|child| child.name() == part)
        })
}

/// Whether an overlay may set `property` of the node at `path`.
fn allowed(path: &str, property: &str, given: &[String]) -> bool {
    BOOKKEEPING.contains(&property)
        || (property == "status" && given.iter().any(|g| g == path))
        || (path == CHOSEN && property.starts_with(hyp_core::config::chosen::PREFIX))
}

/// Each `fragment@N` of `overlay` with the path it targets: `target-path`,
/// or `target` resolved through the overlay's `__fixups__` and the board's
/// `__symbols__`.
fn fragments(board: &Fdt<'_>, overlay: &Fdt<'_>) -> Vec<(String, String)> {
    let root = overlay.root();
    let fixups: BTreeMap<String, String> = root
        .child("__fixups__")
        .into_iter()
        .flat_map(|fixups| fixups.properties())
        .flat_map(|label| {
            label.strings().filter_map(move |place| {
                // "/fragment@0:target:0": fragment@0's target is `label`.
                let (node, rest) = place.strip_prefix('/')?.split_once(':')?;
                rest.starts_with("target:")
                    .then(|| (node.to_owned(), label.name.to_owned()))
            })
        })
        .collect();
    let symbol = |label: &str| {
        board
            .find_node("/__symbols__")
            .and_then(|symbols| symbols.property(label))
            .and_then(|p| p.as_str())
            .map(str::to_owned)
    };
    root.children()
        .filter(|fragment| fragment.child("__overlay__").is_some())
        .filter_map(|fragment: Node<'_>| {
            let name = fragment.name().to_owned();
            let target = match fragment.property("target-path").and_then(|p| p.as_str()) {
                Some(path) => path.to_owned(),
                None => symbol(fixups.get(&name)?)?,
            };
            Some((name, target))
        })
        .collect()
}

/// Partitions that more than one fragment defines.
fn duplicate_partitions(overlay: &Fdt<'_>, fragments: &[(String, String)]) -> Vec<String> {
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, target) in fragments {
        let Some(body) = overlay
            .root()
            .child(name)
            .and_then(|fragment| fragment.child("__overlay__"))
        else {
            continue;
        };
        // The partitions this fragment writes into: below `/`, below
        // `/hypervisor`, or the one it targets.
        let target = target.trim_end_matches('/');
        let names: Vec<String> = match target {
            "" => body
                .child("hypervisor")
                .into_iter()
                .flat_map(|hypervisor| hypervisor.children())
                .map(|partition| partition.name().to_owned())
                .collect(),
            "/hypervisor" => body
                .children()
                .map(|partition| partition.name().to_owned())
                .collect(),
            _ => target
                .strip_prefix("/hypervisor/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
                .into_iter()
                .collect(),
        };
        for partition_name in names {
            match defined.get(&partition_name) {
                Some(first) => problems.push(format!(
                    "{name}: writes into partition {partition_name}, which {first} defines too: \
                     fdtoverlay would merge the two property by property"
                )),
                None => {
                    defined.insert(partition_name, name.clone());
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::workspace::root;

    /// The board, the overlay compiled from `source` and the two merged,
    /// with the real dtc and fdtoverlay.
    fn trees(name: &str, source: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("tessera-scope-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board: PathBuf = root().join("dtb/boards/qemu-virt-gicv3.dtb");
        let dts = dir.join("o.dts");
        std::fs::write(&dts, format!("/dts-v1/;\n/plugin/;\n{source}")).unwrap();
        let run = |command: &mut Command| {
            let output = command
                .output()
                .expect("dtc and fdtoverlay (cargo xtask setup)");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let dtbo = dir.join("o.dtbo");
        let merged = dir.join("m.dtb");
        run(Command::new("dtc")
            .args(["-q", "-@", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtbo)
            .arg(&dts));
        run(Command::new("fdtoverlay")
            .arg("-i")
            .arg(&board)
            .arg("-o")
            .arg(&merged)
            .arg(&dtbo));
        let read = |path: &Path| std::fs::read(path).unwrap();
        let result = (read(&board), read(&dtbo), read(&merged));
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn problems_of(name: &str, source: &str, given: &[&str]) -> Vec<String> {
        let (board, overlay, merged) = trees(name, source);
        let given: Vec<String> = given.iter().map(|g| (*g).to_owned()).collect();
        problems(
            &Fdt::new(&board).unwrap(),
            &Fdt::new(&merged).unwrap(),
            &Fdt::new(&overlay).unwrap(),
            &given,
        )
    }

    const PARTITION: &str =
        "a { compatible = \"tessera,partition\"; memory-size = <0x0 0x100000>; };";

    #[test]
    fn the_partitions_their_devices_status_and_tessera_settings_may_change() {
        let source = format!(
            "/ {{ fragment@0 {{ target-path = \"/\"; __overlay__ {{
                hypervisor {{ compatible = \"tessera,hypervisor\"; {PARTITION} }};
                chosen {{ tessera,log-level = \"debug\"; }};
                pl031@9010000 {{ status = \"disabled\"; }};
            }}; }}; }};"
        );
        assert_eq!(
            problems_of("allowed", &source, &["/pl031@9010000"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn changes_to_the_machine_are_errors_naming_the_fragment() {
        let source = "/ {
            fragment@0 { target-path = \"/\"; __overlay__ {
                chosen { stdout-path = \"/pl031@9010000\"; };
                pl031@9010000 { status = \"disabled\"; };
                extra { compatible = \"made,up\"; };
            }; };
            fragment@1 { target-path = \"/memory@40000000\"; __overlay__ {
                reg = <0x0 0x40000000 0x0 0x100000>;
            }; };
        };";
        let problems = problems_of("machine", source, &[]);
        let has = |text: &str| problems.iter().any(|p| p.contains(text));
        assert!(
            has("fragment@0: changes /chosen's stdout-path"),
            "{problems:#?}"
        );
        assert!(
            has("fragment@0: changes /pl031@9010000's status"),
            "{problems:#?}"
        );
        assert!(has("fragment@0: adds node /extra"), "{problems:#?}");
        assert!(
            has("fragment@1: changes /memory@40000000's reg"),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_fragment_that_patches_a_partition_another_defines_is_an_error() {
        let source = format!(
            "/ {{
                fragment@0 {{ target-path = \"/\"; __overlay__ {{
                    hypervisor {{ compatible = \"tessera,hypervisor\"; {PARTITION} }};
                }}; }};
                fragment@1 {{ target-path = \"/hypervisor/a\"; __overlay__ {{ restart = \"never\"; }}; }};
            }};"
        );
        let problems = problems_of("patch", &source, &[]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("fragment@1: writes into partition a, which fragment@0"));
    }

    #[test]
    fn a_partition_two_fragments_define_is_an_error() {
        let source = format!(
            "/ {{
                fragment@0 {{ target-path = \"/\"; __overlay__ {{
                    hypervisor {{ compatible = \"tessera,hypervisor\"; {PARTITION} }};
                }}; }};
                fragment@1 {{ target-path = \"/hypervisor\"; __overlay__ {{ {PARTITION} }}; }};
            }};"
        );
        let problems = problems_of("twice", &source, &[]);
        assert_eq!(
            problems,
            [
                "fragment@1: writes into partition a, which fragment@0 defines too: fdtoverlay would \
              merge the two property by property"
            ]
        );
    }
}
