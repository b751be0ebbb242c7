//! Report tables as CSV: a header row, RFC 4180 quoting, CRLF line ends,
//! money in major units, and text that a spreadsheet would run as a
//! formula defused; the body is encoded as the client reads it.

use axum::body::Body;

use crate::{
    domain::iso,
    workflow::reports::{Cell, Table},
};

fn cell_csv(cell: &Cell, out: &mut String) {
    match cell {
        Cell::Null => {}
        Cell::Text(s) => csv_text(s, out),
        Cell::Int(n) => out.push_str(&n.to_string()),
        Cell::Decimal(x) => out.push_str(&x.to_string()),
        Cell::Date(d) => out.push_str(&d.format("%Y-%m-%d").to_string()),
        Cell::Money(minor, currency) => out.push_str(&iso::format_major(*minor, currency)),
    }
}

/// RFC 4180 quoting. Text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`: these cells hold
/// what patients and staff typed.
fn csv_text(s: &str, out: &mut String) {
    let guarded = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let quote = guarded || s.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    if quote {
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_line(cells: impl Iterator<Item = impl FnOnce(&mut String)>, out: &mut String) {
    for (i, write) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out);
    }
    out.push_str("\r\n");
}

/// The CSV body, encoded a batch of rows at a time as the client reads.
pub fn body(table: Table) -> Body {
    const BATCH: usize = 256;
    let stream = futures::stream::unfold((table, None::<usize>), |(table, next)| async move {
        let mut out = String::new();
        let start = match next {
            None => {
                csv_line(
                    table
                        .columns
                        .iter()
                        .map(|c| move |o: &mut String| csv_text(c.csv, o)),
                    &mut out,
                );
                0
            }
            Some(i) if i >= table.rows.len() => return None,
            Some(i) => {
                for row in &table.rows[i..(i + BATCH).min(table.rows.len())] {
                    csv_line(
                        row.iter().map(|c| move |o: &mut String| cell_csv(c, o)),
                        &mut out,
                    );
                }
                i + BATCH
            }
        };
        Some((
            Ok::<_, std::convert::Infallible>(bytes_of(out)),
            (table, Some(start)),
        ))
    });
    Body::from_stream(stream)
}

fn bytes_of(s: String) -> axum::body::Bytes {
    axum::body::Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::reports::table::{col, money};

    #[test]
    fn csv_quotes_per_rfc_4180_and_defuses_formulas() {
        let mut out = String::new();
        for s in [
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "=1+1",
            "-3",
            "@x",
        ] {
            csv_text(s, &mut out);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"'=1+1\"|\"'-3\"|\"'@x\"|"
        );
        let mut money = String::new();
        cell_csv(&Cell::Money(-125_050, "EUR".into()), &mut money);
        assert_eq!(money, "-1250.50");
    }

    #[tokio::test]
    async fn the_csv_body_streams_header_then_batches_of_rows() {
        use http_body_util::BodyExt;
        let mut table = Table::new(&[col("n"), money("amount_minor", "amount"), col("currency")]);
        for i in 0..600 {
            table.push(vec![
                Cell::Int(i),
                Cell::Money(i * 100, "USD".into()),
                Cell::Text("USD".into()),
            ]);
        }
        let mut body = body(table);
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("frame").into_data().expect("data");
            frames.push(String::from_utf8(data.to_vec()).expect("utf8"));
        }
        // Header, then 256 + 256 + 88 rows.
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], "n,amount,currency\r\n");
        assert!(frames[1].starts_with("0,0.00,USD\r\n1,1.00,USD\r\n"));
        assert_eq!(frames[3].lines().count(), 88);
        assert!(frames[3].ends_with("599,599.00,USD\r\n"));
    }
}
