//! `fjord`: the broker binary. `fjord serve` runs the broker; more commands arrive with the CLI.
mod serve;
mod settings;

use clap::{Parser, Subcommand};

/// Fjord: a Kafka-compatible message broker in one binary.
///
/// Exit codes: 0 success, 1 runtime error (e.g. the data directory is in use), 2 bad usage.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    ///
    /// Example: fjord serve --data-dir ./fjord-data --listen 127.0.0.1:9092
    Serve(Box<settings::ServeArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
