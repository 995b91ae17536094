//! Human output: aligned tables and humanised sizes and durations.
use std::io::Write;
use std::time::Duration;

/// A table printed with columns padded to their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        write_row(out, &header, &widths)?;
        for r in &self.rows {
            write_row(out, r, &widths)?;
        }
        Ok(())
    }
}

fn write_row(out: &mut impl Write, cells: &[String], widths: &[usize]) -> std::io::Result<()> {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        line.push_str(c);
        if i < last {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(c.chars().count());
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    writeln!(out, "{line}")
}

/// 1536 -> "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A config duration in milliseconds: 604800000 -> "7d", -1 -> "forever".
pub fn millis(ms: i64) -> String {
    if ms < 0 {
        return "forever".into();
    }
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    for (size, name) in UNITS {
        if ms >= size && ms % size == 0 {
            return format!("{}{name}", ms / size);
        }
    }
    if ms == 0 {
        return "0ms".into();
    }
    format!("{ms}ms")
}

/// An elapsed time: "850 µs", "12.3 ms", "4.56 s", "3m 05s".
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        1_000_000..=59_999_999 => format!("{:.2} s", d.as_secs_f64()),
        _ => format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60),
    }
}

/// 1234567 -> "1,234,567".
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanised() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(millis(604_800_000), "7d");
        assert_eq!(millis(-1), "forever");
        assert_eq!(millis(90_000), "90s");
        assert_eq!(millis(1500), "1500ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
    }

    #[test]
    fn table_aligns() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(vec!["a-long-name".into(), "1".into()]);
        t.row(vec!["b".into(), "22".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "NAME         N\na-long-name  1\nb            22\n");
    }
}
