//! Sample files: CSV with one sample per row, the model input flattened in C order.

use std::path::Path;

/// Errors reading samples.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A row has the wrong number of values.
    #[error("{path}:{line}: {got} values, the model input has {expected} (one sample per row, flattened in C order)")]
    Columns {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// Values expected.
        expected: usize,
        /// Values found.
        got: usize,
    },
    /// A field is not a number.
    #[error("{path}:{line}: column {column}: `{field}` is not a number")]
    NotANumber {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The text found.
        field: String,
    },
    /// No samples at all.
    #[error("{path}: no samples")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Parses CSV text into rows of `expected` floats. Blank lines and `#` comments are
/// skipped; a first line that is not numeric is taken as a header and skipped.
pub fn parse_csv(text: &str, path: &str, expected: usize) -> Result<Vec<Vec<f32>>, CsvError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f32>, usize> =
            fields.iter().enumerate().map(|(c, f)| f.parse::<f32>().map_err(|_| c)).collect();
        match parsed {
            Ok(row) if row.len() == expected => rows.push(row),
            Ok(row) => return Err(CsvError::Columns { path: path.into(), line: i + 1, expected, got: row.len() }),
            Err(_) if rows.is_empty() && i == 0 && fields.len() == expected => continue,
            Err(c) => {
                return Err(CsvError::NotANumber {
                    path: path.into(),
                    line: i + 1,
                    column: c + 1,
                    field: fields[c].into(),
                })
            }
        }
    }
    if rows.is_empty() {
        return Err(CsvError::Empty { path: path.into() });
    }
    Ok(rows)
}

/// Reads a CSV file of samples with `expected` values per row.
pub fn read_csv(path: &Path, expected: usize) -> Result<Vec<Vec<f32>>, CsvError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io { path: p.clone(), source })?;
    parse_csv(&text, &p, expected)
}

/// Formats rows of outputs as CSV (shortest round-trip floats).
pub fn format_csv(rows: &[Vec<f32>]) -> String {
    let mut s = String::new();
    for row in rows {
        let fields: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_comments_and_blank_lines_are_skipped() {
        let rows = parse_csv("a,b\n# c\n\n1,2\n3.5,-4e-1\n", "x.csv", 2).unwrap();
        assert_eq!(rows, vec![vec![1.0, 2.0], vec![3.5, -0.4]]);
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let e = parse_csv("1,2\n3,x\n", "x.csv", 2).unwrap_err().to_string();
        assert_eq!(e, "x.csv:2: column 2: `x` is not a number");
        let e = parse_csv("1,2\n3\n", "x.csv", 2).unwrap_err().to_string();
        assert!(e.starts_with("x.csv:2: 1 values, the model input has 2"), "{e}");
    }
}
