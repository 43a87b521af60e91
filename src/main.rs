//! The `kagi` executable: parse the command line, run, map the result to an
//! exit code. Everything else lives in the library.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: kagi::alloc::Allocator = kagi::alloc::Allocator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match kagi::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kagi: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
