//! The command line: `semdock serve | config | feed`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::model::FeedName;
use crate::{server, telemetry};

/// semdock: an on-premises container registry with container versioning.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (default: /etc/semdock/semdock.toml when it exists).
    #[arg(long, global = true, env = "SEMDOCK_CONFIG_FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry.
    Serve,
    /// Print the effective configuration.
    Config,
    /// Manage feeds in the data directory (while no server runs).
    Feed {
        #[command(subcommand)]
        action: FeedAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeedAction {
    /// Create a feed.
    Create { name: String },
    /// List feeds.
    List,
    /// Delete a feed with all its repositories, manifests and tags.
    Delete { name: String },
}

/// Entry point of the binary.
#[must_use]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("semdock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    match cli.command {
        Command::Serve => {
            telemetry::init(&config.log);
            let services = server::open(&config)?;
            actix_web::rt::System::new().block_on(server::serve(&config, services))?;
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Feed { action } => feed(&config, action),
    }
}

fn feed(config: &Config, action: FeedAction) -> anyhow::Result<()> {
    let registry = crate::domain::Registry::open(&config.data_dir, config.limits())?;
    match action {
        FeedAction::Create { name } => {
            registry.create_feed(&name.parse::<FeedName>()?)?;
            println!("created feed {name}");
        }
        FeedAction::List => {
            for (name, _) in registry.feeds()? {
                println!("{name}");
            }
        }
        FeedAction::Delete { name } => {
            registry.delete_feed(&name.parse::<FeedName>()?)?;
            println!("deleted feed {name}");
        }
    }
    Ok(())
}
