//! Tests of `bench_load`'s arguments.

use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<Args, String> {
    args_from(
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[test]
fn the_server_keeps_its_default_workers_unless_told() {
    assert_eq!(parse(&[]).map(|a| a.server_workers), Ok(None));
    assert_eq!(
        parse(&[("--server-workers", "1")]).map(|a| a.server_workers),
        Ok(Some(1))
    );
}

#[test]
fn zero_or_garbage_server_workers_are_refused() {
    for bad in ["0", "-1", "one", ""] {
        assert!(
            parse(&[("--server-workers", bad)]).is_err(),
            "--server-workers {bad:?} was accepted"
        );
    }
}
