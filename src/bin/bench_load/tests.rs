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

#[test]
fn the_read_cache_is_off_unless_asked_for_by_yes() {
    assert_eq!(parse(&[]).map(|a| a.read_cache), Ok(false));
    assert_eq!(
        parse(&[("--read-cache", "yes")]).map(|a| a.read_cache),
        Ok(true)
    );
    assert_eq!(
        parse(&[("--read-cache", "no")]).map(|a| a.read_cache),
        Ok(false)
    );
    for bad in ["", "1", "on", "YES"] {
        assert!(
            parse(&[("--read-cache", bad)]).is_err(),
            "--read-cache {bad:?} was accepted"
        );
    }
}
