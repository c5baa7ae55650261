//! The one difference between the report SQL as Athena runs it and as DataFusion runs it:
//! Athena binds `?` placeholders in order, DataFusion numbers them `$1`, `$2`, ….

/// Numbers the `?` placeholders of `sql` as `$1`, `$2`, …, leaving string literals,
/// quoted identifiers and comments alone.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals_and_comments() {
        assert_eq!(
            numbered_placeholders(
                "SELECT '?', \"a?\" FROM t -- why?\nWHERE a = ? AND b BETWEEN ? AND ? LIMIT ?"
            ),
            "SELECT '?', \"a?\" FROM t -- why?\nWHERE a = $1 AND b BETWEEN $2 AND $3 LIMIT $4"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }
}
