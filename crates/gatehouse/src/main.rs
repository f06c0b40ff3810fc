//! The `gatehouse` binary: parses arguments, validates them, and hands off
//! to the library crates. Nothing here decides anything.

mod background;
mod cli;
mod client;
mod config;
mod deliveries;
mod hooks;
mod key_reload;
mod local;
mod log;
mod mcp;
mod serve;
mod token;
mod users;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::cli::{Cli, Command};

/// The request path allocates many small, short-lived objects (JSON values,
/// Cedar expressions); mimalloc serves them faster than glibc's allocator
/// (see docs/BENCHMARKS.md). Built without transparent huge pages: with
/// them every arena the allocator touches is backed in 2 MiB pages, which
/// doubled the memory of thousands of open connections and kept it after
/// they closed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line; for `serve` with a configuration file, parsed again
/// with the file's values as the flags' defaults, so flags and environment
/// variables still override it.
fn parse() -> anyhow::Result<(Cli, Option<config::Loaded>)> {
    let cli = Cli::parse();
    let Command::Serve(args) = &cli.command else {
        return Ok((cli, None));
    };
    let Some(file) = &args.config else {
        return Ok((cli, None));
    };
    let loaded = config::load(file)?;
    let command =
        Cli::command().mut_subcommand("serve", |serve| config::with_defaults(serve, &loaded));
    let matches = command.get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The file's database_url is only a default: --data (or GATEHOUSE_DATA)
    // given now picks SQLite over it, as a flag must win over the file.
    if let (Command::Serve(args), Some(serve)) =
        (&mut cli.command, matches.subcommand_matches("serve"))
    {
        use clap::parser::ValueSource;
        let given = |id| {
            matches!(
                serve.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        if given("data") && !given("database_url") {
            args.storage.database_url = None;
        }
    }
    Ok((cli, Some(loaded)))
}

fn main() -> ExitCode {
    let (cli, loaded) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let result = match cli.command {
            Command::Serve(args) => serve::run(*args, loaded.map(|l| l.notify).unwrap_or_default())
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Config(cli::ConfigCommand::Check { file }) => match config::check(&file) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    Ok(ExitCode::from(1))
                }
            },
            Command::Deliveries(cmd) => deliveries::run(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Keys(cmd) => local::keys(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Hooks(cmd) => hooks::run(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Mcp(cmd) => mcp::run(cmd).await,
            Command::Users(cmd) => users::run(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Policy(cmd) => local::policy(cmd),
            // `request` has its own exit codes: 0 may proceed, 1 no, 2 error.
            Command::Request(args) => Ok(client::request(args).await),
            Command::Review(cmd) => client::review(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Decisions(cmd) => client::decisions(cmd).await.map(|_| ExitCode::SUCCESS),
            Command::Log(cmd) => log::run(cmd).await,
            Command::Token(cmd) => token::run(cmd).await,
            Command::Verify {
                packet,
                log_key,
                json,
            } => log::verify_packet(&packet, &log_key, json),
            Command::Openapi => {
                println!("{}", gatehouse_server::openapi::json());
                Ok(ExitCode::SUCCESS)
            }
        };
        result.unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        })
    })
}
