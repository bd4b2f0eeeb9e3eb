//! The command line: `semdock serve | config | feed | user | key | promote | history | gc |
//! retention | check | backup | restore`.
//!
//! Administration commands work on the local data directory while no server runs (recovery,
//! first setup), or on a running server with `--server URL` and an API key from
//! `SEMDOCK_API_KEY` or `--api-key-file`.

mod accounts;
mod args;
mod directory;
mod feed;
mod history;
mod login;
mod quota;
mod replication;
mod robots;
mod search;
mod storage;
mod target;
mod trust;
mod vulns;
mod webhook;
#[cfg(windows)]
mod windows;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::{server, telemetry};
use accounts::{key, user};
pub use args::*;
use directory::directory_test;
use feed::feed;
use history::{audit, audit_query, history, now_ms, print_audit, promote, purge, resolve, tag};
use target::{Request, Target, to_json};
use trust::{trust, verify};
use webhook::webhook;
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

/// Prints `rows` under `headers`, each column as wide as its widest cell.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Unix seconds as RFC 3339 (UTC), for people.
fn rfc3339_seconds(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

/// `semdock serve`: the port first, so that a start that cannot serve creates nothing.
fn migrate(config: &Config) -> anyhow::Result<()> {
    use crate::store::meta::postgres::MIGRATIONS;
    match config.storage.metadata {
        crate::config::MetadataEngine::Embedded => {
            println!(
                "storage.metadata is \"embedded\": {} is brought up to date when it is opened; nothing to do",
                config.data_dir.join("meta.redb").display()
            );
        }
        crate::config::MetadataEngine::Postgres => {
            let meta = crate::server::open_postgres(config, false)?;
            let applied = meta.migrate()?;
            let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
            if applied.is_empty() {
                println!("the PostgreSQL schema is up to date (version {latest})");
            } else {
                let list: Vec<String> = applied.iter().map(ToString::to_string).collect();
                println!(
                    "applied migration(s) {}: the PostgreSQL schema is at version {latest}",
                    list.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// What `semdock serve` and `semdock config` say about where the configuration came from:
/// the file read (or that none was), and the mirror feed when one answers pulls naming no
/// feed.
fn config_origin(config: &Config, file: Option<&std::path::Path>) -> Vec<String> {
    let mut lines = vec![match file {
        Some(file) => format!("configuration file: {}", file.display()),
        None => format!(
            "no configuration file ({} does not exist and neither --config nor SEMDOCK_CONFIG_FILE names one): built-in defaults and SEMDOCK_* variables",
            crate::config::DEFAULT_CONFIG_PATH
        ),
    }];
    if let Some(feed) = &config.mirror_feed {
        lines.push(format!(
            "mirror_feed is on: pulls naming no feed of this registry (docker's registry-mirrors) go to feed {feed}"
        ));
    }
    lines
}

fn serve(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    telemetry::init(&config.log);
    for line in config_origin(config, file) {
        tracing::info!("{line}");
    }
    let listener = server::bind(config)?;
    writable_data_dir(&config.data_dir)?;
    let services = server::open(config)?;
    actix_web::rt::System::new().block_on(server::serve(config, services, listener))?;
    Ok(())
}

/// Creates the data directory when it is missing and checks this process may write in it:
/// a directory the service account cannot write is a fact to name, not an internal error.
fn writable_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let refuse = |what: &str, e: &std::io::Error| {
        anyhow::anyhow!(
            "the data directory {} {what}: {e}; give the account semdock runs as write access to it, or choose another with --data-dir, SEMDOCK_DATA_DIR or data_dir",
            shown.display()
        )
    };
    crate::store::owner_only::create_dir_all(dir).map_err(|e| refuse("cannot be created", &e))?;
    let probe = dir.join(format!(".semdock-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| refuse("is not writable", &e))
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    if let Command::GenerateDocs { dir } = &cli.command {
        return generate_docs(dir);
    }
    let mut config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    let file = Config::file_read(cli.config.as_deref());
    match cli.command {
        Command::Serve { listen, data_dir } => {
            config.listen = listen.unwrap_or(config.listen);
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            serve(&config, file.as_deref())
        }
        Command::Config => {
            for line in config_origin(&config, file.as_deref()) {
                println!("# {line}");
            }
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Directory {
            action: DirectoryAction::Test { user },
        } => directory_test(&config, user.as_deref()),
        Command::Login {
            url,
            username,
            password_stdin,
        } => login::login(&url, username.as_deref(), password_stdin),
        Command::Logout { url } => login::logout(&url),
        Command::Feed { action, remote } => feed(&target(&config, &remote)?, *action),
        Command::Gc { dry_run, remote } => {
            storage::gc(&config, &target(&config, &remote)?, dry_run)
        }
        Command::Retention {
            feed,
            dry_run,
            remote,
        } => storage::retention_run(&target(&config, &remote)?, &feed, dry_run),
        Command::Check { jobs, max_mbps } => {
            storage::check(&target(&config, &Remote::none())?, jobs, max_mbps)
        }
        Command::Backup { dir, remote } => storage::backup(&target(&config, &remote)?, &dir),
        Command::Restore { dir } => storage::restore(&config, &dir),
        Command::Migrate => migrate(&config),
        Command::Storage {
            action: StorageAction::Migrate { to },
        } => storage::migrate(&config, &to),
        Command::GenerateDocs { .. } => unreachable!("handled before the configuration loads"),
        Command::Service => run_service(config),
        Command::User { action, remote } => user(&target(&config, &remote)?, action),
        Command::Key { action, remote } => key(&target(&config, &remote)?, action),
        Command::Robot { action, remote } => robots::robot(&target(&config, &remote)?, action),
        Command::Quota {
            feed,
            set_bytes,
            remove,
            remote,
        } => quota::quota(&target(&config, &remote)?, &feed, set_bytes, remove),
        Command::Search {
            query,
            limit,
            output,
            remote,
        } => search::search(&target(&config, &remote)?, &query, limit, output),
        Command::Federation { action, remote } => {
            robots::federation(&target(&config, &remote)?, action)
        }
        Command::Webhook { action, remote } => webhook(&target(&config, &remote)?, action),
        Command::Replication { action, remote } => {
            replication::replication(&target(&config, &remote)?, action)
        }
        Command::Trust { action, remote } => trust(&target(&config, &remote)?, action),
        Command::Maintenance { action, remote } => {
            storage::maintenance(&target(&config, &remote)?, action)
        }
        Command::Vulndb { action, remote } => vulns::vulndb(&target(&config, &remote)?, action),
        command @ Command::Vuln { .. } => vulns::vuln(&config, command),
        Command::Verify { image, remote } => verify(
            &target(&config, &remote)?,
            &image,
            &registry_hosts(&config, &remote),
        ),
        Command::Purge {
            image,
            live,
            remote,
        } => purge(&target(&config, &remote)?, &image, live),
        Command::Tag { action, remote } => tag(&target(&config, &remote)?, action),
        command @ Command::Promote { .. } => promote(&config, command),
        Command::Resolve { image, remote } => {
            let pinned = resolve(
                &target(&config, &remote)?,
                &image,
                &registry_hosts(&config, &remote),
            )?;
            println!("{pinned}");
            Ok(())
        }
        command @ Command::Audit { .. } => audit_command(&config, command),
        command @ Command::History { .. } => history(&config, command),
    }
}

/// `semdock audit …`: one query of the audit log, printed.
fn audit_command(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::Audit {
        since,
        until,
        actor,
        feed,
        kind,
        limit,
        jsonl,
        remote,
    } = command
    else {
        unreachable!("called for `audit` only")
    };
    let query = audit_query(
        since,
        until,
        [("actor", actor), ("feed", feed), ("kind", kind)],
        jsonl,
    )?;
    let entries = to_json(&audit(&target(config, &remote)?, &query, limit)?)?;
    print_audit(entries.as_array().map_or(&[], Vec::as_slice), jsonl);
    Ok(())
}

/// The names this registry is reached by (`host[:port]`), which an image reference may
/// start with: the `--server` URL's, or for a local data directory the external URL's and
/// the listening address's.
fn registry_hosts(config: &Config, remote: &Remote) -> Vec<String> {
    let host_of = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
    };
    let mut hosts = Vec::new();
    if let Some(server) = &remote.server {
        hosts.push(host_of(server));
    }
    if let Some(url) = &config.external_url {
        hosts.push(host_of(url));
    }
    hosts.push(config.listen.to_string());
    hosts.push(format!("localhost:{}", config.listen.port()));
    hosts
}

impl Remote {
    fn none() -> Self {
        Self {
            server: None,
            api_key_file: None,
        }
    }
}

#[cfg(windows)]
fn run_service(config: Config) -> anyhow::Result<()> {
    windows::run(config)
}

#[cfg(not(windows))]
fn run_service(_: Config) -> anyhow::Result<()> {
    bail!("`semdock service` runs semdock as a Windows service; elsewhere use `semdock serve`")
}

/// `semdock.1` (roff) and completions for bash, zsh and fish, generated from the CLI itself.
/// ENVIRONMENT, FILES and EXAMPLES of `semdock(1)`, in roff.
const MAN_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBSEMDOCK_*\fR
Every configuration key, nested keys joined with two underscores: \fBSEMDOCK_LISTEN\fR,
\fBSEMDOCK_DATA_DIR\fR, \fBSEMDOCK_FEEDS\fR=[library,prod], \fBSEMDOCK_EXTERNAL_URL\fR,
\fBSEMDOCK_TRUSTED_PROXIES\fR, \fBSEMDOCK_LOG__LEVEL\fR, \fBSEMDOCK_LOG__FORMAT\fR,
\fBSEMDOCK_LOG__DIR\fR, \fBSEMDOCK_LIMITS__UPLOAD_BYTES\fR, \fBSEMDOCK_AUTH__TOKEN_TTL_SECONDS\fR,
\fBSEMDOCK_TLS__CERT_FILE\fR, \fBSEMDOCK_TLS__KEY_FILE\fR, \fBSEMDOCK_STORAGE__GC_INTERVAL_SECONDS\fR
and the rest (\fBsemdock config\fR prints them all). They override the configuration file.
.TP
\fBSEMDOCK_API_KEY\fR
The API key \fB--server\fR commands use (not configuration).
.TP
\fBSEMDOCK_CONFIG_FILE\fR
The configuration file, as \fB--config\fR.
.TP
\fBXDG_CONFIG_HOME\fR, \fBHOME\fR
Where \fBsemdock login\fR keeps its keys.
.SH FILES
.TP
\fI/etc/semdock/semdock.toml\fR
The configuration file read when \fB--config\fR is not given.
.TP
\fI/var/lib/semdock\fR
The data directory of the packaged service: \fImeta.redb\fR (metadata, the token signing key,
password hashes), \fIblobs/\fR, \fIuploads/\fR, \fIinitial-admin-password\fR (until the first
administrator changes it).
.TP
\fI~/.config/semdock/credentials.json\fR
The keys of \fBsemdock login\fR, readable by you only.
.SH EXAMPLES
.nf
semdock serve --listen 0.0.0.0:5000 --data-dir /srv/semdock
semdock login https://registry.example.com -u admin
semdock feed create prod --server https://registry.example.com
semdock feed set prod --versioning on --permit dev --server https://registry.example.com
semdock promote staging/web:5.1.0 prod/web:5.1.0 --comment "passed staging" --server https://registry.example.com
semdock history prod/web --tag latest --at "2 hours ago" --server https://registry.example.com
semdock user list --output json --server https://registry.example.com
semdock backup /srv/backup/$(date +%F) --server https://registry.example.com
.fi
.SH SEE ALSO
\fBsemdock-serve\fR(1), \fBsemdock-login\fR(1), \fBsemdock-feed\fR(1), \fBsemdock-user\fR(1),
\fBsemdock-key\fR(1), \fBsemdock-promote\fR(1), \fBsemdock-history\fR(1), \fBsemdock-gc\fR(1),
\fBsemdock-backup\fR(1)
"#;

fn generate_docs(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    let command = Cli::command();
    // One page per command (semdock-serve.1, semdock-feed-create.1, …), then the main page
    // again with the sections clap does not write.
    clap_mangen::generate_to(command.clone(), dir)?;
    let mut man = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut man)?;
    man.extend_from_slice(MAN_SECTIONS.as_bytes());
    std::fs::write(dir.join("semdock.1"), man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command.clone(), "semdock", dir)?;
    }
    Ok(())
}

fn target(config: &Config, remote: &Remote) -> anyhow::Result<Target> {
    let Some(typed) = &remote.server else {
        let services = crate::server::open_services(config, false)?;
        return Ok(Target::Local(Box::new(services)));
    };
    let base = login::base_url(typed)?;
    let key = match &remote.api_key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => match std::env::var("SEMDOCK_API_KEY") {
            Ok(key) => key,
            Err(_) => {
                if let Some(key) = login::stored_key(&base)? {
                    key
                } else {
                    // A wrong address is the likelier mistake: say that before asking for a key.
                    reachable(&base)?;
                    bail!(
                        "--server {base} needs an API key: run `semdock login {base}`, set SEMDOCK_API_KEY, or pass --api-key-file"
                    );
                }
            }
        },
    };
    Ok(Target::Remote {
        base,
        key: key.trim().to_owned(),
    })
}

/// Whether a registry answers at `base`; a sentence naming the address when nothing does.
fn reachable(base: &str) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    match agent.get(&format!("{base}/v2/")).call() {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "cannot reach a server at {base} ({e}): is the address and port right, and is semdock running there?"
        ),
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    Ok(Some(password.trim_end_matches(['\r', '\n']).to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every argument of every command, in the man pages and `--help`, says what it is.
    #[test]
    fn every_argument_of_every_command_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !cmd.is_hide_set() {
                missing.push(format!("{path} (the command)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }
}
