//! The subcommands, one module each, and what several of them share.

#[cfg(feature = "bridge")]
pub mod bridge;
pub mod hz;
pub mod ls;
pub mod rm;
pub mod show;
pub mod watch;

use crate::model::{FileInfo, Mode, WriterState};
use crate::source::{self, Magic, Segment, SourceError};

/// Shell-style match of `name` against `pattern`: `*` any run of characters, `?` one
/// character, everything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`).
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// What a listing knows about one flexshm segment.
#[derive(Debug, Clone)]
pub struct Summary {
    pub mode: Mode,
    pub fields: usize,
    pub record_size: usize,
    pub writer: WriterState,
    pub head: u32,
}

/// One flexshm file in /dev/shm: its file facts and either a summary or why it could
/// not be opened.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub file: Option<FileInfo>,
    pub segment: Result<Summary, SourceError>,
}

/// The flexshm segments of /dev/shm (files starting with the flexshm magic) whose
/// names match `pattern`, and the names of files that could not be read to tell.
pub fn scan(pattern: Option<&str>) -> Result<(Vec<Entry>, Vec<String>), crate::Failure> {
    let names = source::list_names()
        .map_err(|e| crate::Failure::new(format!("cannot list {}: {e}", source::SHM_DIR)))?;
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    for name in names {
        if pattern.is_some_and(|p| !glob(p, &name)) {
            continue;
        }
        match source::magic(&name) {
            Magic::Flexshm => {}
            Magic::Unreadable => {
                // Gone since the directory was read, or not ours to read.
                if source::file_info(&name).is_ok() {
                    unreadable.push(name);
                }
                continue;
            }
            Magic::Zero | Magic::Other => continue,
        }
        let segment = Segment::open(&name).map(|s| Summary {
            mode: s.mode(),
            fields: s.fields().len(),
            record_size: s.record_size(),
            writer: s.writer(),
            head: s.head(),
        });
        let file = source::file_info(&name).ok();
        if file.is_none() && segment.is_err() {
            // Removed while we looked.
            continue;
        }
        entries.push(Entry {
            name,
            file,
            segment,
        });
    }
    Ok((entries, unreadable))
}

/// Left-aligned columns two spaces apart; `rows` may carry extra lines (errors) after a
/// row, printed as they are.
pub fn table(headers: &[&str], rows: &[(Vec<String>, Option<String>)]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in rows {
        for (w, c) in width.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.zip(&width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            s.push_str(&" ".repeat(w.saturating_sub(c.chars().count())));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for (cells, extra) in rows {
        out += &line(&mut cells.iter().map(String::as_str));
        if let Some(e) = extra {
            out += e;
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("sens*", "sensors"));
        assert!(glob("s?nsors", "sensors"));
        assert!(glob("*-test-*-a", "flexshm-test-12-a"));
        assert!(!glob("*-test-*-a", "flexshm-test-12-ab"));
        assert!(!glob("sensors", "sensors2"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }
}
