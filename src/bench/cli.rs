//! Command-line handling shared by the benchmark binaries: `--flag value`
//! pairs, numbers and comma-separated lists of them, and the exit codes
//! (2 for bad arguments with the usage line, 1 for a failed run).

use std::{future::Future, process::ExitCode, str::FromStr};

/// The `--flag value` pairs after the program name, in order.
pub fn pairs() -> Result<Vec<(String, String)>, String> {
    pairs_from(std::env::args().skip(1))
}

fn pairs_from(args: impl IntoIterator<Item = String>) -> Result<Vec<(String, String)>, String> {
    let mut it = args.into_iter();
    let mut out = Vec::new();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.push((flag, value));
    }
    Ok(out)
}

/// `value` as a number for `flag`.
pub fn number<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: '{value}' is not a number"))
}

/// `value` as a comma-separated list of numbers for `flag`.
pub fn numbers(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    value.split(',').map(|s| number(flag, s)).collect()
}

pub fn unknown(flag: &str) -> String {
    format!("unknown argument '{flag}'")
}

/// The whole of a benchmark's `main`: bad arguments print the error and
/// `usage` and exit 2; a failed run prints its error and exits 1.
pub async fn main<A, Fut>(
    name: &str,
    usage: &str,
    args: Result<A, String>,
    run: impl FnOnce(A) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), String>>,
{
    let args = match args {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}\nusage: {usage}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pairs_flags_with_values() {
        let got = pairs_from(strings(&["--sizes", "1,2", "--requests", "5"])).unwrap();
        assert_eq!(
            got,
            vec![
                ("--sizes".to_owned(), "1,2".to_owned()),
                ("--requests".to_owned(), "5".to_owned())
            ]
        );
        assert_eq!(
            pairs_from(strings(&["--sizes", "1", "--requests"])).unwrap_err(),
            "--requests needs a value"
        );
    }

    #[test]
    fn parses_numbers_and_lists() {
        assert_eq!(number::<u64>("--seconds", " 10 "), Ok(10));
        assert_eq!(
            number::<usize>("--flood", "-1").unwrap_err(),
            "--flood: '-1' is not a number"
        );
        assert_eq!(
            numbers("--sizes", "10000, 100000"),
            Ok(vec![10_000, 100_000])
        );
        assert!(numbers("--sizes", "10000,x").is_err());
    }
}
