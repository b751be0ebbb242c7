//! Report tables as CSV: a header row, RFC 4180 quoting, CRLF line ends,
//! money in major units, and text that a spreadsheet would run as a
//! formula defused; the body is encoded as the client reads it.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
// `::csv`: the crate, not this module of the same name.
use ::csv::{QuoteStyle, Terminator, Writer, WriterBuilder};

use crate::{
    domain::iso,
    workflow::reports::{Cell, Column, Table},
};

/// Rows encoded per chunk of the body.
const BATCH: usize = 256;

fn writer() -> Writer<Vec<u8>> {
    WriterBuilder::new()
        .terminator(Terminator::CRLF)
        .quote_style(QuoteStyle::Necessary)
        // The writer quotes a field only when it holds a special byte, and
        // the `'` that `guard` adds must sit inside quotes (a quoted cell is
        // read as text). Declaring `'` the comment byte makes it special:
        // the writer then quotes any field holding one, as documented for
        // `comment`. Other text with an apostrophe is quoted too, which
        // reads back the same.
        .comment(Some(b'\''))
        .from_writer(Vec::new())
}

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, CR first) gets a leading `'`: these cells hold what patients and
/// staff typed.
fn guard(s: &str) -> Cow<'_, str> {
    if matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r')) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn field(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Null => Cow::Borrowed(""),
        Cell::Text(s) => guard(s),
        Cell::Int(n) => Cow::Owned(n.to_string()),
        Cell::Decimal(x) => Cow::Owned(x.to_string()),
        Cell::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
        Cell::Money(minor, currency) => Cow::Owned(iso::format_major(*minor, currency)),
    }
}

/// Encodes each of `records` as one CSV line.
fn encode<'a>(
    records: impl IntoIterator<Item = impl IntoIterator<Item = Cow<'a, str>>>,
) -> Result<Bytes, ::csv::Error> {
    let mut w = writer();
    for record in records {
        for f in record {
            w.write_field(f.as_bytes())?;
        }
        // An empty record ends the one the fields above began.
        w.write_record(None::<&[u8]>)?;
    }
    let out = w.into_inner().map_err(|e| e.into_error())?;
    Ok(Bytes::from(out))
}

fn header(columns: &[Column]) -> Result<Bytes, ::csv::Error> {
    encode([columns.iter().map(|c| guard(c.csv))])
}

fn rows(rows: &[Vec<Cell>]) -> Result<Bytes, ::csv::Error> {
    encode(rows.iter().map(|row| row.iter().map(field)))
}

/// The CSV body: the header, then `BATCH` rows at a time, each batch
/// encoded only when the client is ready for it.
pub fn body(table: Table) -> Body {
    let stream = futures::stream::unfold((table, None::<usize>), |(table, next)| async move {
        let (chunk, start) = match next {
            None => (header(&table.columns), 0),
            Some(i) if i >= table.rows.len() => return None,
            Some(i) => {
                let end = (i + BATCH).min(table.rows.len());
                (rows(&table.rows[i..end]), end)
            }
        };
        if let Err(e) = &chunk {
            // The response has begun, so the client sees a cut-off body.
            tracing::error!(error = %e, "a CSV body could not be encoded");
        }
        Some((chunk, (table, Some(start))))
    });
    // Fused: the gzip layer polls the body once more after its end, and an
    // unfold stream panics when polled past its end.
    Body::from_stream(futures::StreamExt::fuse(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One cell as its CSV line would hold it.
    fn csv_text(s: &str, out: &mut String) {
        let line = rows(&[vec![Cell::Text(s.into())]]).expect("encoded");
        let line = String::from_utf8(line.to_vec()).expect("utf8");
        out.push_str(line.strip_suffix("\r\n").expect("a CRLF line end"));
    }

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
        let money = Cell::Money(-125_050, "EUR".into());
        assert_eq!(field(&money), "-1250.50");
    }

    #[test]
    fn what_is_written_reads_back_with_only_the_guard_added() {
        let texts = ["Crohn's disease", "=HYPERLINK(\"x\")", "a\r\nb", "", "+1"];
        let line =
            rows(&[texts.iter().map(|t| Cell::Text((*t).into())).collect()]).expect("encoded");
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&line[..]);
        let record = reader.records().next().expect("a record").expect("valid");
        assert_eq!(
            record.iter().collect::<Vec<_>>(),
            ["Crohn's disease", "'=HYPERLINK(\"x\")", "a\r\nb", "", "'+1"]
        );
    }

    #[tokio::test]
    async fn the_csv_body_streams_header_then_batches_of_rows() {
        use http_body_util::BodyExt;
        let mut table = Table::new(&[
            Column::int("n"),
            Column::money("amount_minor", "amount"),
            Column::text("currency"),
        ]);
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
