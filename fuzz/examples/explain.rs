//! `cargo run --example explain -- config|cli_args FILE...`: what each input
//! comes to (accepted, or the rejection's message), to review that every
//! rejection names its problem.
use berth_fuzz::{cli_args, config, Outcome};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let run: fn(&[u8]) -> Outcome = match target.as_str() {
        "config" => config::run,
        "cli_args" => cli_args::run,
        _ => {
            eprintln!("usage: explain config|cli_args FILE...");
            std::process::exit(2);
        }
    };
    // The config target makes its bundle under the temp dir: one of our own, removed at the end.
    let scratch = std::env::temp_dir().join(format!("berth-fuzz-explain-{}", std::process::id()));
    std::env::set_var("TMPDIR", &scratch);
    for file in args {
        match std::fs::read(&file) {
            Ok(data) => match run(&data) {
                Outcome::Skipped => println!("{file}: skipped"),
                Outcome::Accepted => println!("{file}: accepted"),
                Outcome::Rejected(message) => println!("{file}: rejected: {message}"),
            },
            Err(e) => println!("{file}: cannot read: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
