//! `fjord`: the broker binary. `fjord serve` runs the broker; the other commands are a
//! Kafka-protocol client that works against any Kafka-compatible broker.
mod cli;
mod serve;
mod settings;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: glibc keeps freed memory in per-thread arenas, so a burst
/// of connections left the broker at ten times its baseline RSS long after they closed;
/// mimalloc returns freed pages to the system (tests/clients/test_connections.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (broker unreachable, Kafka error, records not acknowledged, ...)
  2  bad usage (unknown flag, invalid value)

Client commands read the broker address from --bootstrap or FJORD_BOOTSTRAP
(default 127.0.0.1:9092). See docs/CLI.md for every command with examples.";

/// Fjord: a Kafka-compatible message broker in one binary.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = EXIT_CODES)]
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
    /// Create, list, describe, alter and delete topics.
    ///
    /// Example: fjord topic create orders --partitions 3
    Topic(cli::topic::TopicArgs),
    Produce(cli::produce::ProduceArgs),
    Consume(cli::consume::ConsumeArgs),
    /// Consumer groups: list, describe (offsets and lag), reset offsets, delete.
    ///
    /// Example: fjord group describe billing
    Group(cli::group::GroupArgs),
    /// Transactions: list, describe, the producers of a partition, abort a hanging one.
    ///
    /// Example: fjord txn list --state Ongoing
    Txn(cli::txn::TxnArgs),
    /// Delayed records: list pending ones, cancel before delivery (over the HTTP endpoint).
    ///
    /// Example: fjord delay list --topic orders
    Delay(cli::delay::DelayArgs),
    /// A share group's dead letters: list them, show one, produce them again (redrive).
    ///
    /// Example: fjord dlq list orders.dlq --group billing
    Dlq(cli::dlq::DlqArgs),
    /// Stored records by key, message id, offset or time (over the HTTP endpoint).
    ///
    /// Example: fjord message get orders --key order-42
    Message(cli::message::MessageArgs),
    /// Load-test a broker: produce or consume throughput and latency.
    ///
    /// Example: fjord bench produce --count 1000000 --json
    Bench(cli::bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Topic(args) => cli::topic::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Group(args) => cli::group::run(args),
        Command::Txn(args) => cli::txn::run(args),
        Command::Delay(args) => cli::delay::run(args),
        Command::Dlq(args) => cli::dlq::run(args),
        Command::Message(args) => cli::message::run(args),
        Command::Bench(args) => cli::bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `fjord consume | head`: the reader went away, which is how such pipelines end.
        Err(e) if cli::errors::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord: error: {}", cli::errors::render(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
