//! The `worldfit` command line: a thin layer over the library that adds
//! wording, alignment and exit codes (0 yes, 1 no, 2 error).

mod cli;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`worldfit host | head`) is not an error worth reporting.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(0);
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(
                    stderr,
                    "  caused by: {}",
                    cause.to_string().lines().next().unwrap_or_default()
                );
            }
            ExitCode::from(2)
        }
    }
}
