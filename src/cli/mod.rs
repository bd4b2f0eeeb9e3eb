//! The command line: `semdock serve | config | feed | user | key | promote | history | gc |
//! retention | check | backup | restore`.
//!
//! Administration commands work on the local data directory while no server runs (recovery,
//! first setup), or on a running server with `--server URL` and an API key from
//! `SEMDOCK_API_KEY` or `--api-key-file`.

mod admin;
mod login;
mod storage;
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
use admin::{Target, now_ms, roles_text};

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

/// Where administration commands act.
#[derive(Debug, Args)]
pub struct Remote {
    /// A running server's URL (e.g. `https://registry.example.com`); without it, commands act
    /// on the local data directory, which no server may hold.
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// A file holding the API key for `--server` (else `SEMDOCK_API_KEY`).
    #[arg(long, global = true)]
    pub api_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a server: creates an API key for this machine with your roles and keeps it
    /// (0600) in your configuration directory; `--server URL` commands then use it.
    Login {
        /// The server's URL, e.g. `https://registry.example.com`.
        url: String,
        /// The user name (asked for when not given).
        #[arg(long, short = 'u')]
        username: Option<String>,
        /// Read the password from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log out of a server: revokes the key `semdock login` created and forgets it.
    Logout {
        /// The server's URL, as given to `semdock login`.
        url: String,
    },
    /// Run the registry.
    #[command(
        after_help = "Configuration, later sources winning: built-in defaults; the file given with --config \
(else /etc/semdock/semdock.toml when it exists; packaging/semdock.toml shows every key); \
SEMDOCK_* environment variables, nested keys joined with __ (SEMDOCK_LISTEN, SEMDOCK_DATA_DIR, \
SEMDOCK_FEEDS=[library,prod], SEMDOCK_EXTERNAL_URL, SEMDOCK_TRUSTED_PROXIES, SEMDOCK_LOG__LEVEL, \
SEMDOCK_LOG__FORMAT, SEMDOCK_LOG__DIR, SEMDOCK_LIMITS__UPLOAD_BYTES, SEMDOCK_AUTH__TOKEN_TTL_SECONDS, \
SEMDOCK_TLS__CERT_FILE, SEMDOCK_TLS__KEY_FILE, SEMDOCK_STORAGE__GC_INTERVAL_SECONDS, ...); \
then these flags. `semdock config` prints the result."
    )]
    Serve {
        /// Address and port to listen on (e.g. 0.0.0.0:5000, or localhost:5000); overrides
        /// `listen`.
        #[arg(long, value_name = "ADDR", value_parser = crate::config::resolve_listen)]
        listen: Option<std::net::SocketAddr>,
        /// Directory of the metadata, blobs and uploads; created on the first start;
        /// overrides `data_dir`.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the effective configuration.
    Config,
    /// The company directory ([directory.ldap] or [directory.oidc] in the configuration).
    Directory {
        #[command(subcommand)]
        action: DirectoryAction,
    },
    /// Manage feeds.
    Feed {
        #[command(subcommand)]
        action: Box<FeedAction>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage users and their roles.
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Promote or retag an image: SRC (FEED/NAME:TAG or @DIGEST) to DST (FEED/NAME:TAG), by
    /// link, without copying blob bytes.
    Promote {
        /// The image to promote: FEED/NAME:TAG, FEED/NAME@DIGEST, or FEED/NAME:TAG@DIGEST
        /// (refused unless the tag still points at DIGEST); with this registry's host in
        /// front as docker prints it (HOST:PORT/FEED/NAME@DIGEST) too.
        from: String,
        /// Where to: FEED/NAME:TAG (another feed, or another tag in the same one).
        to: String,
        /// The digest the source must point at (what was tested): refused, naming both
        /// digests, when it points elsewhere.
        #[arg(long)]
        expected_digest: Option<String>,
        /// Why, for the tag history (e.g. "passed staging").
        #[arg(long)]
        comment: Option<String>,
        /// Copy signatures and SBOMs that refer to the image too.
        #[arg(long)]
        include_referrers: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a tag (FEED/NAME:TAG); in a versioned feed a version keeps its number as a
    /// tombstone, which `semdock purge` frees.
    Tag {
        #[command(subcommand)]
        action: TagAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Free the number of a deleted version (FEED/NAME:TAG) so it can be pushed with other
    /// content. A version that is still live is refused unless --live confirms it (it is then
    /// deleted and purged, both in the tag history).
    Purge {
        /// FEED/NAME:TAG of a deleted version.
        image: String,
        /// Purge a live tag: delete it and free its number in one step.
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the pinned reference HOST/FEED/NAME@DIGEST of what a tag points at now, for a
    /// deployment manifest.
    Resolve {
        /// FEED/NAME:TAG (or FEED/NAME:TAG@DIGEST to check it still points there).
        image: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show the audit log: logins, keys, roles, users, feed settings, pushes, deletes,
    /// promotions, purges, GC and retention runs, refusals; newest first.
    Audit {
        /// From this time: RFC 3339, a date, or a relative time (2 hours ago).
        #[arg(long)]
        since: Option<String>,
        /// Before this time.
        #[arg(long)]
        until: Option<String>,
        /// Only what this user (or retention, scheduler, local) did.
        #[arg(long)]
        actor: Option<String>,
        /// Only entries of this feed.
        #[arg(long)]
        feed: Option<String>,
        /// Kinds, comma-separated: added, tag-moved, promoted, login-failed, … (or webhook
        /// names: Added, Promoted, …).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON lines, oldest first (an export), instead of a table.
        #[arg(long)]
        jsonl: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show the tag history of a repository (or one tag), or what a tag pointed to --at a time.
    History {
        /// FEED/NAME.
        repository: String,
        /// Only this tag's changes.
        #[arg(long)]
        tag: Option<String>,
        /// With --tag: what the tag pointed to at a time, as RFC 3339 with any offset
        /// (2026-12-01T08:48:30+01:00), a date (2026-12-01), or a relative time (2 hours
        /// ago); for a virtual tag (latest, 5, 5.1), the version it followed too.
        #[arg(long, requires = "tag")]
        at: Option<String>,
        /// Only the newest this many changes (still printed oldest first); every change
        /// otherwise.
        #[arg(long)]
        limit: Option<usize>,
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        remote: Remote,
    },
    /// Collect garbage: blobs no manifest references (older than the grace period) and
    /// abandoned uploads.
    Gc {
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Apply a feed's retention rules now (set them with `semdock feed retention`).
    Retention {
        /// The feed whose rules to apply.
        feed: String,
        /// List exactly what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Re-hash every blob and verify every manifest and tag (local data directory only).
    /// Corrupt files are moved aside as .corrupted; exits 1 when anything is wrong.
    Check {
        /// Blobs hashed in parallel.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Read at most this many MiB per second.
        #[arg(long)]
        max_mbps: Option<u64>,
    },
    /// Write a consistent backup (metadata and blobs) into a new or empty directory; with
    /// --server, the directory is on the server's machine.
    Backup {
        /// An absolute directory, new or empty.
        dir: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Bring the metadata database's schema up to date and say what was applied (`serve`
    /// does the same at every start; this runs it ahead of an upgrade of the nodes).
    Migrate,
    /// Move the registry to other storage (for example from the embedded default to
    /// PostgreSQL and S3). Stop the server first.
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
    /// Restore a backup into the configured data directory, which must be new or empty.
    Restore {
        /// A directory `semdock backup` wrote.
        dir: PathBuf,
    },
    /// Run as the Windows service `semdock` (the .msi installs it; the Service Control
    /// Manager starts it).
    #[command(hide = true)]
    Service,
    /// Write the man page and shell completions into DIR (used by the packages).
    #[command(hide = true)]
    GenerateDocs {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage webhooks: endpoints told of pushes, promotions, deletions and refusals.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Add a webhook; its signing secret is printed once.
    Create {
        /// Where events are sent (an HTTP or HTTPS URL).
        url: String,
        /// Only this feed's events (every feed's otherwise: administrators only).
        #[arg(long)]
        feed: Option<String>,
        /// An event to send (repeatable): added, tag-moved, virtual-tag-moved, promoted,
        /// deleted, purged, retention-deleted, push-refused, feed-settings-changed (or as
        /// webhooks name them: Added, Promoted, …). Every event when none is given.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// The HMAC-SHA256 secret of X-Semdock-Signature (generated when omitted).
        #[arg(long)]
        secret: Option<String>,
        /// Send Cloud Events 1.0 (structured mode) instead of semdock's JSON.
        #[arg(long)]
        cloudevents: bool,
    },
    /// List webhooks.
    List {
        /// Only this feed's (what its administrators may list).
        #[arg(long)]
        feed: Option<String>,
    },
    /// Show a webhook's newest deliveries: event, status, response code, attempts.
    Deliveries {
        /// The webhook's id.
        id: String,
    },
    /// Send an event to a webhook again.
    Redeliver {
        /// The webhook's id.
        id: String,
        /// The event's id (the audit entry's, as the delivery log shows it).
        event: u64,
    },
    /// Remove a webhook.
    Delete {
        /// The webhook's id.
        id: String,
    },
}

/// How list commands print.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns with a header line, for people.
    #[default]
    Table,
    /// One JSON array, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Copy every blob (hashed on the way) and then every record of the configured registry
    /// into the empty storage that the configuration file CONFIG names; run it again after an
    /// interruption and it goes on where it stopped. Then point the servers at CONFIG.
    Migrate {
        /// The configuration file of the target (its `[storage]` and `data_dir`).
        #[arg(long = "to", value_name = "CONFIG")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryAction {
    /// Check the configuration against the server: bind as the service account, find a
    /// user, list their groups and the roles those give; says what is wrong.
    Test {
        /// A login name to look up.
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum FeedAction {
    /// Create a feed.
    Create {
        /// The feed's name: lowercase letters, digits and . _ - (the first path segment of
        /// its repositories).
        name: String,
    },
    /// List feeds.
    List {
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a feed with all its repositories, manifests and tags.
    Delete {
        /// The feed to delete.
        name: String,
    },
    /// Change feed settings: versioning, permitted tags, anonymous pull, description.
    Set {
        /// The feed to change.
        name: String,
        /// Container versioning on or off.
        #[arg(long, value_parser = ["on", "off"])]
        versioning: Option<String>,
        /// A permitted tag or glob (repeatable); replaces the list.
        #[arg(long = "permit", value_name = "TAG")]
        permit: Vec<String>,
        /// Clear the permitted list.
        #[arg(long, conflicts_with = "permit")]
        no_permit: bool,
        /// Anonymous pull on or off.
        #[arg(long, value_parser = ["on", "off"])]
        anonymous_pull: Option<String>,
        /// A description shown in the UI.
        #[arg(long)]
        description: Option<String>,
        /// Accept images only by promotion from FEED (repeatable; replaces the list): pushes
        /// of tags are refused with how to promote instead.
        #[arg(long = "promotion-from", value_name = "FEED")]
        promotion_from: Vec<String>,
        /// Accept pushes again (clear the promotion sources).
        #[arg(long, conflicts_with = "promotion_from")]
        allow_push: bool,
        /// Promotions need a referrer of this artifact type on the image (a signature or an
        /// attestation); "" needs none.
        #[arg(long, value_name = "ARTIFACT_TYPE")]
        require_referrer: Option<String>,
        /// Make the feed a connector: a pull-through cache of the registry at URL (for Docker
        /// Hub, registry-1.docker.io over HTTPS); "" makes it a plain feed again.
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// The connector's user name at the upstream. This and the connector settings below
        /// change a connector without repeating --upstream.
        #[arg(long)]
        upstream_user: Option<String>,
        /// A file whose first line is the connector's password at the upstream.
        #[arg(long)]
        upstream_password_file: Option<PathBuf>,
        /// Prefixed to repository names upstream (library/ for Docker Hub's official images).
        #[arg(long)]
        upstream_prefix: Option<String>,
        /// Check mutable tags upstream again after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        upstream_ttl: Option<u64>,
        /// Serve only what is cached, never asking the upstream.
        #[arg(long, value_parser = ["on", "off"])]
        offline: Option<String>,
        /// Fetch only upstream repositories matching GLOB (library/*); repeat for more.
        #[arg(long, value_name = "GLOB")]
        upstream_allow: Vec<String>,
        /// Never fetch upstream repositories matching GLOB; repeat for more.
        #[arg(long, value_name = "GLOB")]
        upstream_deny: Vec<String>,
        /// In a versioned connector feed, latest follows the upstream's own latest (on)
        /// rather than the highest version seen (off).
        #[arg(long, value_parser = ["on", "off"])]
        upstream_latest: Option<String>,
        /// Fetch ahead of pulls: REPOSITORY, REPOSITORY:GLOB or REPOSITORY@SEMVER-REQ
        /// (library/postgres@^16); repeat for more; replaces the stored rules.
        #[arg(long, value_name = "RULE")]
        sync: Vec<String>,
        /// Remove every sync rule.
        #[arg(long, conflicts_with = "sync")]
        no_sync: bool,
        /// Seconds between scheduled syncs (0: only `semdock feed sync`).
        #[arg(long, value_name = "SECONDS")]
        sync_interval: Option<u64>,
    },
    /// Sync a connector feed now: fetch what its sync rules name, and print the report.
    Sync {
        /// The connector feed.
        name: String,
    },
    /// Check a connector feed's upstream and credentials: does it answer, does it admit the
    /// connector.
    TestUpstream {
        /// The connector feed.
        name: String,
    },
    /// Show or set a feed's retention rules.
    Retention {
        /// The feed whose rules to show or set.
        name: String,
        /// Delete manifests no tag reaches after N days.
        #[arg(long, value_name = "N")]
        untagged_days: Option<u32>,
        /// Keep only the N newest pre-release versions per repository.
        #[arg(long, value_name = "N")]
        keep_prereleases: Option<u32>,
        /// Delete images neither pulled nor pushed for N days.
        #[arg(long, value_name = "N")]
        unpulled_days: Option<u32>,
        /// Let --unpulled-days delete released versions of a versioned feed too.
        #[arg(long)]
        include_releases: bool,
        /// Switch every rule off.
        #[arg(long, conflicts_with_all = ["untagged_days", "keep_prereleases", "unpulled_days", "include_releases"])]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagAction {
    /// Delete a tag; the manifest stays while other tags (or digests) reach it.
    Delete {
        /// FEED/NAME:TAG.
        image: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; prints a generated password unless --password-stdin is given.
    Create {
        /// The user name: 1 to 64 of a-z 0-9 . _ -.
        name: String,
        /// Make the user a global administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles (every page, or the first --limit).
    List {
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Disable a user: logins, keys and tokens stop at once.
    Disable {
        /// The user to disable.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user to enable.
        name: String,
    },
    /// Set a user's password (prints a generated one unless --password-stdin is given).
    ResetPassword {
        /// The user whose password to set.
        name: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Grant ROLE (pull, push, promote, delete, admin) on FEED.
    Grant {
        /// The user.
        name: String,
        /// The feed.
        feed: String,
        /// pull, push, promote, delete or admin.
        role: String,
    },
    /// Remove the user's role on FEED.
    Revoke {
        /// The user.
        name: String,
        /// The feed.
        feed: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Create an API key; the key is printed once.
    Create {
        /// A name that says where the key is used (e.g. ci-prod).
        #[arg(long)]
        name: String,
        /// Owner (administrators only; default: the caller).
        #[arg(long)]
        owner: Option<String>,
        /// FEED=ROLE, repeatable.
        #[arg(long = "role", value_name = "FEED=ROLE")]
        roles: Vec<String>,
        /// Administrator rights (only for an administrator's own key).
        #[arg(long)]
        admin: bool,
        /// The key stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
        expires_days: Option<u64>,
    },
    /// List API keys (every page, or the first --limit).
    List {
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Revoke an API key by id.
    Revoke {
        /// The key's id (from `semdock key list`).
        id: String,
    },
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

/// `semdock purge IMAGE [--live]`.
fn purge(target: &Target, image: &str, live: bool) -> anyhow::Result<()> {
    if let Err(e) = target.purge(image, live) {
        // The API's refusal tells an API client how to confirm; here that is --live.
        if !live && e.to_string().contains(" is live: delete it first") {
            bail!(
                "{image} is still live: delete it first (`semdock tag delete {image}`), then purge it; or delete and purge it in one step with `semdock purge {image} --live`"
            );
        }
        return Err(e);
    }
    println!("purged {image}: its number is free");
    Ok(())
}

/// `semdock tag delete IMAGE`.
fn tag(target: &Target, action: TagAction) -> anyhow::Result<()> {
    match action {
        TagAction::Delete { image } => {
            target.tag_delete(&image)?;
            println!("deleted {image}");
        }
    }
    Ok(())
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
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
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
        Command::Webhook { action, remote } => webhook(&target(&config, &remote)?, action),
        Command::Purge {
            image,
            live,
            remote,
        } => purge(&target(&config, &remote)?, &image, live),
        Command::Tag { action, remote } => tag(&target(&config, &remote)?, action),
        command @ Command::Promote { .. } => promote(&config, command),
        Command::Resolve { image, remote } => {
            let pinned =
                target(&config, &remote)?.resolve(&image, &registry_hosts(&config, &remote))?;
            println!("{pinned}");
            Ok(())
        }
        Command::Audit {
            since,
            until,
            actor,
            feed,
            kind,
            limit,
            jsonl,
            remote,
        } => {
            let query = audit_query(
                since,
                until,
                [("actor", actor), ("feed", feed), ("kind", kind)],
                jsonl,
            )?;
            let entries = target(&config, &remote)?.audit(&query, limit)?;
            print_audit(&entries, jsonl);
            Ok(())
        }
        command @ Command::History { .. } => history(&config, command),
    }
}

/// `semdock history REPOSITORY [--tag T [--at TIME]] [--limit N] [--output json]`.
fn history(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::History {
        repository,
        tag,
        at,
        limit,
        output,
        remote,
    } = command
    else {
        unreachable!("called for history only")
    };
    let found =
        target(config, &remote)?.history(&repository, tag.as_deref(), at.as_deref(), limit)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Output::Table => print_history(&found, at.is_some()),
    }
    Ok(())
}

fn promote(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::Promote {
        from,
        to,
        expected_digest,
        comment,
        include_referrers,
        remote,
    } = command
    else {
        unreachable!("called for promote only")
    };
    let done = target(config, &remote)?.promote(
        &from,
        &to,
        expected_digest.as_deref(),
        comment.as_deref(),
        include_referrers,
        &registry_hosts(config, &remote),
    )?;
    let verb = if done["changed"] == true {
        "now points"
    } else {
        "already pointed"
    };
    println!(
        "{to} {verb} at {}",
        done["digest"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// The audit API's query of `semdock audit`: times typed at the prompt as Unix seconds.
fn audit_query(
    since: Option<String>,
    until: Option<String>,
    filters: [(&'static str, Option<String>); 3],
    jsonl: bool,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let time = |t: String| -> anyhow::Result<String> {
        let ms = crate::model::instant::parse(&t, now_ms(), true).map_err(anyhow::Error::msg)?;
        Ok((ms / 1000).to_string())
    };
    let mut query = Vec::new();
    if let Some(t) = since {
        query.push(("since", time(t)?));
    }
    if let Some(t) = until {
        query.push(("until", time(t)?));
    }
    for (k, v) in filters {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    if jsonl {
        query.push(("order", "oldest".to_owned()));
    }
    Ok(query)
}

/// Audit entries as lines (time, kind, actor, feed, change), or as JSON lines.
fn print_audit(entries: &[serde_json::Value], jsonl: bool) {
    for e in entries {
        if jsonl {
            println!("{e}");
            continue;
        }
        let text = |k: &str| {
            e[k].as_str()
                .filter(|v| !v.is_empty())
                .unwrap_or("-")
                .to_owned()
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            text("time"),
            text("kind"),
            text("actor"),
            text("feed"),
            text("change")
        );
    }
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

/// A history as lines (time, tag, change, old -> new, actor), or the digest a tag had `--at`
/// (and the version, for a virtual tag).
fn print_history(found: &serde_json::Value, at: bool) {
    if at {
        match (found["digest"].as_str(), found["version"].as_str()) {
            (Some(digest), Some(version)) => println!("{digest} (version {version})"),
            (Some(digest), None) => println!("{digest}"),
            (None, _) => println!("(none: the tag did not exist then)"),
        }
        return;
    }
    for h in found.as_array().into_iter().flatten() {
        let text = |k: &str| h[k].as_str().unwrap_or("-").to_owned();
        println!(
            "{}\t{}\t{}\t{} -> {}\t{}",
            text("time"),
            text("tag"),
            text("method"),
            text("old"),
            text("new"),
            text("actor")
        );
    }
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

fn feed(target: &Target, action: FeedAction) -> anyhow::Result<()> {
    match action {
        FeedAction::Create { name } => {
            target.feed_create(&name)?;
            println!("created feed {name}");
        }
        FeedAction::List { output } => {
            let feeds = target.feed_list()?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&feeds)?),
                Output::Table => {
                    let on = |f: &serde_json::Value, k: &str| {
                        if f[k] == true { "on" } else { "off" }.to_owned()
                    };
                    let rows: Vec<Vec<String>> = feeds
                        .iter()
                        .map(|f| {
                            vec![
                                f["name"].as_str().unwrap_or_default().to_owned(),
                                on(f, "versioning"),
                                on(f, "anonymous_pull"),
                                f["upstream"]["url"].as_str().unwrap_or("-").to_owned(),
                                entry_of(f),
                                f["description"].as_str().unwrap_or_default().to_owned(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "FEED",
                            "VERSIONING",
                            "ANONYMOUS PULL",
                            "CONNECTOR UPSTREAM",
                            "ENTRY",
                            "DESCRIPTION",
                        ],
                        &rows,
                    );
                }
            }
        }
        FeedAction::Delete { name } => {
            target.feed_delete(&name)?;
            println!("deleted feed {name}");
        }
        FeedAction::Retention {
            name,
            untagged_days,
            keep_prereleases,
            unpulled_days,
            include_releases,
            off,
        } => {
            let rules = crate::domain::retention::Rules {
                untagged_days,
                keep_prereleases,
                unpulled_days,
                include_releases,
            };
            let change = off || !rules.is_empty() || include_releases;
            storage::retention_set(target, &name, change.then_some(rules))?;
        }
        set @ FeedAction::Set { .. } => feed_set(target, set)?,
        FeedAction::TestUpstream { name } => {
            let r = match target {
                Target::Local(s) => serde_json::to_value(s.registry.test_upstream(&name)?)?,
                Target::Remote { .. } => {
                    target.call("POST", &format!("/feeds/{name}/upstream/test"), None)?
                }
            };
            println!("{}", r["message"].as_str().unwrap_or_default());
            if r["ok"] != true {
                anyhow::bail!("the upstream of {name} is not usable");
            }
        }
        FeedAction::Sync { name } => {
            let r = match target {
                Target::Local(s) => serde_json::to_value(s.registry.sync_connector(&name)?)?,
                Target::Remote { .. } => {
                    target.call("POST", &format!("/feeds/{name}/sync"), None)?
                }
            };
            println!(
                "feed {name}: {} tags held, {} blobs fetched, {} history records carried, {} errors",
                r["tags"],
                r["blobs_fetched"],
                r["history_carried"],
                r["errors"].as_array().map_or(0, Vec::len)
            );
            for e in r["errors"].as_array().into_iter().flatten() {
                println!("  {}", e.as_str().unwrap_or_default());
            }
            if r["errors"].as_array().is_some_and(|e| !e.is_empty()) {
                anyhow::bail!("the sync of {name} left errors");
            }
        }
    }
    Ok(())
}

/// `semdock directory test`: each step the server takes, and what it found.
fn directory_test(config: &Config, user: Option<&str>) -> anyhow::Result<()> {
    let dir = config.directory().map_err(anyhow::Error::msg)?.context(
        "no directory is configured: add [directory.ldap] or [directory.oidc] to the configuration",
    )?;
    if let Some(oidc) = dir.oidc() {
        let found = oidc.check().map_err(|e| {
            anyhow::anyhow!(
                "{e} (OpenID Connect: is the issuer {} right and reachable; with https, does ca_file hold the CA that signed the provider's certificate?)",
                oidc.issuer()
            )
        })?;
        println!("OpenID Connect: {found}");
    }
    let (Some(ldap), Some(dir_ldap)) = (&config.directory.ldap, dir.ldap()) else {
        if user.is_some() {
            anyhow::bail!(
                "only an LDAP directory can be asked about a user; OpenID Connect users are seen when they sign in"
            );
        }
        return Ok(());
    };
    let explain = |e: crate::domain::DirectoryError| match e {
        crate::domain::DirectoryError::Unavailable(why) => anyhow::anyhow!(
            "cannot reach {}: {why} (is the URL right; with StartTLS or ldaps://, does ca_file hold the CA that signed the server's certificate?)",
            ldap.url
        ),
        refused @ crate::domain::DirectoryError::Refused(_) => anyhow::anyhow!("{refused}"),
    };
    dir_ldap.check().map_err(explain)?;
    println!(
        "{}: reached{}, {}",
        ldap.url,
        if ldap.starttls { " with StartTLS" } else { "" },
        ldap.bind_dn.as_deref().map_or_else(
            || "searching anonymously".to_owned(),
            |dn| format!("the service account {dn} bound")
        )
    );
    let Some(user) = user else {
        return Ok(());
    };
    let Some(found) = dir_ldap.find(user).map_err(explain)? else {
        anyhow::bail!(
            "no single entry under {} matches {} for {user:?} (unknown, ambiguous, or excluded by the filter, as disabled accounts are)",
            ldap.user_base,
            ldap.user_filter
        );
    };
    println!("user {user}: {}", found.dn);
    println!("  semdock account: {}", found.name);
    if found.groups.is_empty() {
        println!("  groups: none found (check group_attribute, or group_base and group_filter)");
    } else {
        println!("  groups: {}", found.groups.join("; "));
    }
    let roles = dir.resolve(&found, 0);
    let feeds: Vec<String> = roles
        .feeds
        .iter()
        .map(|(f, r)| format!("{f} {r}"))
        .collect();
    println!(
        "  administrator: {}; roles from groups: {}",
        if roles.admin { "yes" } else { "no" },
        if feeds.is_empty() {
            "none".to_owned()
        } else {
            feeds.join(", ")
        }
    );
    Ok(())
}

fn feed_set(target: &Target, action: FeedAction) -> anyhow::Result<()> {
    let FeedAction::Set {
        name,
        versioning,
        permit,
        no_permit,
        anonymous_pull,
        description,
        promotion_from,
        allow_push,
        require_referrer,
        upstream,
        upstream_user,
        upstream_password_file,
        upstream_prefix,
        upstream_ttl,
        offline,
        upstream_allow,
        upstream_deny,
        upstream_latest,
        sync,
        no_sync,
        sync_interval,
    } = action
    else {
        unreachable!("called for feed set only")
    };
    let connector_flags = upstream_user.is_some()
        || upstream_password_file.is_some()
        || upstream_prefix.is_some()
        || upstream_ttl.is_some()
        || offline.is_some()
        || !upstream_allow.is_empty()
        || !upstream_deny.is_empty()
        || upstream_latest.is_some()
        || !sync.is_empty()
        || no_sync
        || sync_interval.is_some();
    let upstream = upstream_url(target, &name, upstream, connector_flags)?;
    let password = upstream_password_file
        .map(|f| {
            std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map(|p| p.lines().next().unwrap_or_default().to_owned())
        })
        .transpose()?;
    let upstream = upstream.map(|url| crate::domain::UpstreamChange {
        url,
        username: upstream_user,
        password,
        prefix: upstream_prefix,
        ttl_seconds: upstream_ttl,
        offline: offline.map(|o| o == "on"),
        allow: (!upstream_allow.is_empty()).then_some(upstream_allow),
        deny: (!upstream_deny.is_empty()).then_some(upstream_deny),
        upstream_latest: upstream_latest.map(|o| o == "on"),
        sync: (no_sync || !sync.is_empty()).then_some(sync),
        sync_interval_seconds: sync_interval,
    });
    let on = |v: Option<String>| v.map(|v| v == "on");
    let change = crate::domain::FeedChange {
        description,
        anonymous_pull: on(anonymous_pull),
        versioning: on(versioning),
        permitted: (no_permit || !permit.is_empty()).then_some(permit),
        promotion_sources: (allow_push || !promotion_from.is_empty()).then_some(promotion_from),
        required_referrer: require_referrer,
        upstream,
    };
    let f = target.feed_set(&name, change)?;
    let permitted: Vec<&str> = f["permitted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    let entry = entry_of(&f);
    let referrer = f["required_referrer"]
        .as_str()
        .map(|t| format!(", promotions need a referrer of type {t}"))
        .unwrap_or_default();
    println!(
        "feed {name}: versioning {}, permitted [{}], anonymous pull {}, {entry}{referrer}",
        if f["versioning"] == true { "on" } else { "off" },
        permitted.join(", "),
        if f["anonymous_pull"] == true {
            "on"
        } else {
            "off"
        },
    );
    Ok(())
}

/// The `--upstream` of a `feed set`: as given, or the connector's own URL when only its
/// other settings change (so they change without repeating it).
fn upstream_url(
    target: &Target,
    name: &str,
    given: Option<String>,
    connector_flags: bool,
) -> anyhow::Result<Option<String>> {
    if given.is_some() || !connector_flags {
        return Ok(given);
    }
    let feed = target.feed_show(name)?;
    let url = feed["upstream"]["url"].as_str().with_context(|| {
        format!("feed {name} is not a connector: make it one with --upstream URL")
    })?;
    Ok(Some(url.to_owned()))
}

/// How images enter a feed: from its upstream (a connector), by promotion only, or by push.
fn entry_of(f: &serde_json::Value) -> String {
    let up = &f["upstream"];
    if let Some(url) = up["url"].as_str() {
        let ttl = up["ttl_seconds"].as_u64().unwrap_or_default();
        let offline = if up["offline"] == true {
            ", offline: cache only"
        } else {
            ""
        };
        return format!("connector of {url} (mutable tags checked again after {ttl} s{offline})");
    }
    let sources: Vec<&str> = f["promotion_sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    if sources.is_empty() {
        "accepts pushes".to_owned()
    } else {
        format!("accepts promotion from [{}] only", sources.join(", "))
    }
}

fn user(target: &Target, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Create {
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            match target.user_create(&name, password.as_deref(), admin)? {
                Some(generated) => println!("created user {name} with password {generated}"),
                None => println!("created user {name}"),
            }
        }
        UserAction::List { output, limit } => {
            let users = target.user_list(limit)?;
            if let Output::Json = output {
                println!("{}", serde_json::to_string_pretty(&users)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let flags = [
                        ("admin", u["admin"].as_bool()),
                        ("disabled", u["disabled"].as_bool()),
                    ]
                    .iter()
                    .filter(|(_, on)| *on == Some(true))
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(",");
                    vec![
                        u["name"].as_str().unwrap_or_default().to_owned(),
                        flags,
                        roles_text(&u["roles"]),
                    ]
                })
                .collect();
            print_table(&["USER", "FLAGS", "ROLES"], &rows);
        }
        UserAction::Disable { name } => {
            target.user_set_disabled(&name, true)?;
            println!("disabled user {name}");
        }
        UserAction::Enable { name } => {
            target.user_set_disabled(&name, false)?;
            println!("enabled user {name}");
        }
        UserAction::ResetPassword {
            name,
            password_stdin,
        } => {
            let given = read_password(password_stdin)?;
            let password = given
                .clone()
                .unwrap_or_else(crate::domain::auth::random_password);
            target.user_set_password(&name, &password)?;
            if given.is_some() {
                println!("password of {name} changed");
            } else {
                println!("password of {name} is now {password}");
            }
        }
        UserAction::Grant { name, feed, role } => {
            target.user_grant(&name, &feed, Some(&role))?;
            println!("granted {role} on {feed} to {name}");
        }
        UserAction::Revoke { name, feed } => {
            target.user_grant(&name, &feed, None)?;
            println!("removed the role of {name} on {feed}");
        }
    }
    Ok(())
}

fn webhook(target: &Target, action: WebhookAction) -> anyhow::Result<()> {
    match action {
        WebhookAction::Create {
            url,
            feed,
            events,
            secret,
            cloudevents,
        } => {
            let new = crate::domain::webhooks::NewEndpoint {
                url,
                secret,
                feed,
                events,
                format: if cloudevents {
                    crate::domain::webhooks::Format::Cloudevents
                } else {
                    crate::domain::webhooks::Format::Semdock
                },
            };
            let hook = target.webhook_create(&new)?;
            println!(
                "created webhook {} to {}; its secret is shown only now:\n{}",
                hook["id"].as_str().unwrap_or_default(),
                hook["url"].as_str().unwrap_or_default(),
                hook["secret"].as_str().unwrap_or_default()
            );
        }
        WebhookAction::List { feed } => {
            let rows: Vec<Vec<String>> = target
                .webhook_list(feed.as_deref())?
                .iter()
                .map(|h| {
                    let text = |f: &str| h[f].as_str().unwrap_or("-").to_owned();
                    let events: Vec<&str> = h["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str())
                        .collect();
                    vec![
                        text("id"),
                        text("url"),
                        text("feed"),
                        if events.is_empty() {
                            "(all)".to_owned()
                        } else {
                            events.join(",")
                        },
                        text("format"),
                        h["cursor"].to_string(),
                    ]
                })
                .collect();
            print_table(&["ID", "URL", "FEED", "EVENTS", "FORMAT", "CURSOR"], &rows);
        }
        WebhookAction::Deliveries { id } => {
            let rows: Vec<Vec<String>> = target
                .webhook_deliveries(&id)?
                .iter()
                .map(|d| {
                    let text = |f: &str| d[f].as_str().unwrap_or("-").to_owned();
                    vec![
                        d["event_id"].to_string(),
                        text("event"),
                        text("time"),
                        text("status"),
                        d["response_code"]
                            .as_u64()
                            .map_or("-".into(), |c| c.to_string()),
                        d["attempts"].to_string(),
                        text("error"),
                    ]
                })
                .collect();
            print_table(
                &[
                    "EVENT", "KIND", "TIME", "STATUS", "CODE", "ATTEMPTS", "ERROR",
                ],
                &rows,
            );
        }
        WebhookAction::Redeliver { id, event } => {
            target.webhook_redeliver(&id, event)?;
            println!("event {event} is queued to be sent to webhook {id} again");
        }
        WebhookAction::Delete { id } => {
            target.webhook_delete(&id)?;
            println!("deleted webhook {id}");
        }
    }
    Ok(())
}

fn key(target: &Target, action: KeyAction) -> anyhow::Result<()> {
    match action {
        KeyAction::Create {
            name,
            owner,
            roles,
            admin,
            expires_days,
        } => {
            let mut parsed = BTreeMap::new();
            for r in roles {
                let Some((feed, role)) = r.split_once('=') else {
                    bail!("--role takes FEED=ROLE, e.g. prod=push; got {r:?}");
                };
                parsed.insert(feed.to_owned(), role.to_owned());
            }
            let expires =
                expires_days.map(|d| (now_ms() / 1000).saturating_add(d.saturating_mul(86_400)));
            let (id, key) = target.key_create(&name, owner.as_deref(), &parsed, admin, expires)?;
            let until = expires.map_or_else(String::new, |e| {
                format!(", valid until {}", rfc3339_seconds(e))
            });
            println!("created API key {id}{until}; it is shown only now:\n{key}");
        }
        KeyAction::List { output, limit } => {
            let keys = target.key_list(limit)?;
            if let Output::Json = output {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let text = |f: &str| k[f].as_str().unwrap_or_default().to_owned();
                    vec![
                        text("id"),
                        text("name"),
                        text("owner"),
                        roles_text(&k["roles"]),
                        k["expires"]
                            .as_u64()
                            .map_or_else(|| "never".to_owned(), rfc3339_seconds),
                    ]
                })
                .collect();
            print_table(&["ID", "NAME", "OWNER", "ROLES", "EXPIRES"], &rows);
        }
        KeyAction::Revoke { id } => {
            target.key_revoke(&id)?;
            println!("revoked API key {id}");
        }
    }
    Ok(())
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
