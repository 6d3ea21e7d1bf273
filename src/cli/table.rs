//! Aligned plain-text tables for the CLI's default output (`--json` prints the
//! server's JSON instead). Columns are padded to their widest cell (counted in
//! characters); numbers are right-aligned.

use serde_json::Value;

/// Renders `rows` under `headers`, two spaces between columns.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(i).is_some_and(|c| {
                        !c.is_empty()
                            && c.chars()
                                .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '%' | '-'))
                    })
                })
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            if i > 0 {
                out.push_str("  ");
            }
            if numeric.get(i).copied().unwrap_or(false) {
                out.push_str(&pad);
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&pad);
                }
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A JSON value as a cell: strings bare, null as `-`, ratios as percentages
/// when `pct`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// A ratio (0..1) as a whole percentage, `-` when null.
pub fn pct(v: &Value) -> String {
    v.as_f64()
        .map(|f| format!("{:.0}%", f * 100.0))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let t = render(
            &["pool", "live"],
            &[
                vec!["demo".into(), "5".into()],
                vec!["a-longer-name".into(), "12345".into()],
            ],
        );
        assert_eq!(
            t,
            "pool            live\ndemo               5\na-longer-name  12345"
        );
        assert_eq!(pct(&serde_json::json!(0.5)), "50%");
        assert_eq!(cell(&Value::Null), "-");
    }
}
