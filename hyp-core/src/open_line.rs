//! The console line a partition has started but not finished (a shell's
//! prompt and what is typed after it). Other output may come in between: it
//! ends the shown part with a newline, and when the partition goes on, its
//! line is printed again from the start under a fresh prefix, so that every
//! finished line reaches the console whole, as a person or a test reads it.

/// Bytes of an unfinished line kept for printing again; beyond, the
/// reprint is cut (the line itself still reaches the console).
pub const CAPACITY: usize = 256;

/// A piece of console output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The start of a partition's line: time stamp and name.
    Prefix,
    Bytes(&'a [u8]),
}

/// One unfinished line is remembered: when a second partition leaves one
/// (its prompt shown after a wait), the first's continuation is printed
/// under a fresh prefix without its start.
#[derive(Debug)]
pub struct OpenLine {
    /// Who started the unfinished line (0: nobody).
    owner: usize,
    text: heapless::Vec<u8, CAPACITY>,
    /// Whether it is the console's current line.
    shown: bool,
}

impl Default for OpenLine {
    fn default() -> Self {
        OpenLine::new()
    }
}

impl OpenLine {
    pub const fn new() -> OpenLine {
        OpenLine {
            owner: 0,
            text: heapless::Vec::new(),
            shown: false,
        }
    }

    /// Before output that is not a partition's (a log record).
    pub fn interrupt(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        if self.shown {
            out(Piece::Bytes(b"\n"));
            self.shown = false;
        }
    }

    /// `owner`'s `text`, which ends its line if `ended`.
    pub fn write(
        &mut self,
        owner: usize,
        text: &[u8],
        ended: bool,
        out: &mut impl FnMut(Piece<'_>),
    ) {
        let mine = self.owner == owner;
        if !(mine && self.shown) {
            self.interrupt(out);
            out(Piece::Prefix);
            if mine {
                out(Piece::Bytes(&self.text));
            }
        }
        out(Piece::Bytes(text));
        if ended {
            out(Piece::Bytes(b"\n"));
            if mine {
                *self = OpenLine::default();
            }
            return;
        }
        if !mine {
            self.owner = owner;
            self.text.clear();
        }
        for &byte in text {
            if self.text.push(byte).is_err() {
                break;
            }
        }
        self.shown = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output as the console shows it, with "<a>" for owner 1's prefix
    /// and "<b>" for owner 2's.
    fn console(writes: &[(usize, &str, bool)]) -> String {
        let mut line = OpenLine::default();
        let mut shown = String::new();
        for &(owner, text, ended) in writes {
            line.write(owner, text.as_bytes(), ended, &mut |piece| match piece {
                Piece::Prefix => shown.push_str(if owner == 1 { "<a>" } else { "<b>" }),
                Piece::Bytes(bytes) => shown.push_str(&String::from_utf8_lossy(bytes)),
            });
        }
        shown
    }

    #[test]
    fn a_line_written_in_pieces_is_one_line() {
        assert_eq!(
            console(&[(1, "~ # ", false), (1, "ls", false), (1, "", true)]),
            "<a>~ # ls\n"
        );
    }

    #[test]
    fn a_line_interrupted_by_another_partition_is_printed_again_whole() {
        assert_eq!(
            console(&[
                (1, "sleep-s", false),
                (2, "tick 5", true),
                (1, "tart", true)
            ]),
            "<a>sleep-s\n<b>tick 5\n<a>sleep-start\n"
        );
    }

    #[test]
    fn a_second_unfinished_line_takes_the_place_of_the_first() {
        assert_eq!(
            console(&[
                (1, "loading", false),
                (2, "login: ", false),
                (1, " done", true),
                (2, "root", true)
            ]),
            "<a>loading\n<b>login: \n<a> done\n<b>login: root\n"
        );
    }

    #[test]
    fn a_log_record_ends_the_shown_part_and_the_line_goes_on_after_it() {
        let mut line = OpenLine::default();
        let mut shown = String::new();
        let mut out = |piece: Piece<'_>| match piece {
            Piece::Prefix => shown.push_str("<a>"),
            Piece::Bytes(bytes) => shown.push_str(&String::from_utf8_lossy(bytes)),
        };
        line.write(1, b"~ # ", false, &mut out);
        line.interrupt(&mut out);
        out(Piece::Bytes(b"log\n"));
        line.write(1, b"echo", false, &mut out);
        assert_eq!(shown, "<a>~ # \nlog\n<a>~ # echo");
    }
}
