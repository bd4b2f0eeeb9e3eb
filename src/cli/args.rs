//! The command line's words: the clap types of every command and its options.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    /// Robot accounts: machine identities owned by a feed or by the registry, never by a
    /// person.
    Robot {
        #[command(subcommand)]
        action: super::robots::RobotAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// A feed's storage quota and usage (each blob once per feed); administrators set it
    /// (`--set-bytes`) or remove it.
    Quota {
        /// The feed.
        feed: String,
        /// The quota in bytes (`10737418240` for 10 GiB).
        #[arg(long, conflicts_with = "remove")]
        set_bytes: Option<u64>,
        /// Remove the quota.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Search repositories, tags, digests (or their first characters) and annotations
    /// (`KEY=VALUE`) across the feeds you may pull.
    Search {
        /// What to look for.
        query: String,
        /// At most this many hits (at most 200).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        remote: Remote,
    },
    /// Replication: rules that push a feed's released images to another registry (a
    /// second site, a disaster-recovery copy), with their lag, conflicts and runs.
    Replication {
        #[command(subcommand)]
        action: super::replication::ReplicationAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Workload identity federation: CI jobs and clusters log in as a robot with the ID
    /// token their platform gives them (administrators).
    Federation {
        #[command(subcommand)]
        action: super::robots::FederationAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage trust: the public keys signatures are verified with, and feeds' signature
    /// policies.
    Trust {
        #[command(subcommand)]
        action: TrustAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show which signatures an image has, which verify with which trusted key, and why the
    /// others do not; exits 1 when none verifies.
    Verify {
        /// FEED/NAME:TAG or FEED/NAME@DIGEST.
        image: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Read-only mode for upgrades and recovery: `on` makes every node refuse writes (pulls
    /// go on) until `off`; it holds across restarts.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// The vulnerability database: import OSV files (administrators), see what is imported.
    Vulndb {
        #[command(subcommand)]
        action: VulndbAction,
        #[command(flatten)]
        remote: Remote,
    },
    /// An image's vulnerabilities (`semdock vuln FEED/NAME:TAG`), its SBOM, and feeds'
    /// vulnerability policies and exceptions.
    #[command(args_conflicts_with_subcommands = true)]
    Vuln {
        #[command(subcommand)]
        action: Option<VulnAction>,
        /// FEED/NAME:TAG or FEED/NAME@DIGEST: show its vulnerabilities; exits 1 when it has
        /// any at or above --fail-at.
        image: Option<String>,
        /// With an image: exit 1 when a finding is at or above this severity.
        #[arg(long)]
        fail_at: Option<String>,
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
pub enum VulndbAction {
    /// Import OSV files: a record's JSON, a JSON array of records, or a zip of records as
    /// osv.dev exports them per ecosystem (`Debian/all.zip`).
    Import {
        /// The files, imported one after the other.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// The files imported and the database's epoch.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceAction {
    /// Refuse writes on every node (503 with `Retry-After`); pulls, logins and backups go on.
    On {
        /// Shown in every refusal and on every page of the UI.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Take writes again.
    Off,
    /// Whether read-only mode is on, since when, who turned it on and why.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum VulnAction {
    /// Every repository and released version an advisory affects, per feed, and the version
    /// that fixes it (`semdock vuln affected CVE-2023-4911`).
    Affected {
        /// An advisory id or alias.
        advisory: String,
    },
    /// An image's SBOM as semdock generated it (CycloneDX 1.6, or SPDX 2.3 with `--spdx`).
    Sbom {
        /// FEED/NAME:TAG or FEED/NAME@DIGEST.
        image: String,
        /// Write SPDX 2.3 JSON instead of CycloneDX.
        #[arg(long)]
        spdx: bool,
    },
    /// Show a feed's vulnerability policy, set it with --refuse-at, or remove it.
    Policy {
        /// The feed.
        feed: String,
        /// Refuse promotions of images with a finding at or above this severity
        /// (critical, high, medium, low, negligible).
        #[arg(long)]
        refuse_at: Option<String>,
        /// Count only findings that have a fixed version.
        #[arg(long)]
        fixable_only: bool,
        /// Virtual tags (`latest`, `3`, `3.4`) follow only versions read and passing.
        #[arg(long, requires = "refuse_at")]
        virtual_tags: bool,
        /// Gate tag pushes too (the image is read during the push): `refuse` them (403) or
        /// `warn` (a `Warning` header).
        #[arg(long, requires = "refuse_at", value_name = "refuse|warn", value_parser = ["refuse", "warn"])]
        on_push: Option<String>,
        /// Gate pulls too: `refuse` them (403) or `warn` (a `Warning` header).
        #[arg(long, requires = "refuse_at", value_name = "refuse|warn", value_parser = ["refuse", "warn"])]
        on_pull: Option<String>,
        /// Remove the policy and its exceptions.
        #[arg(long, conflicts_with = "refuse_at")]
        remove: bool,
    },
    /// Accept an advisory in a feed (audited), or withdraw it.
    Exception {
        #[command(subcommand)]
        action: ExceptionAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExceptionAction {
    /// Accept an advisory in a feed, with a reason; audited.
    Add {
        /// The feed.
        feed: String,
        /// The advisory id or an alias (CVE-…).
        advisory: String,
        /// Why it is accepted.
        #[arg(long)]
        reason: String,
        /// Only for this package.
        #[arg(long)]
        package: Option<String>,
        /// The last day it holds (YYYY-MM-DD, UTC).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Withdraw a feed's exceptions for an advisory; audited.
    Remove {
        /// The feed.
        feed: String,
        /// The advisory id or alias the exception names.
        advisory: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustAction {
    /// The public keys signatures are verified with (administrators).
    Key {
        #[command(subcommand)]
        action: TrustKeyAction,
    },
    /// The Sigstore trusted roots keyless signatures verify under (administrators).
    Root {
        #[command(subcommand)]
        action: TrustRootAction,
    },
    /// The Notation trust stores: CA certificates signing certificates chain to
    /// (administrators).
    Store {
        #[command(subcommand)]
        action: TrustStoreAction,
    },
    /// Show a feed's signature policy, or set it with --key, --identity or --store (feed
    /// administrators).
    Policy {
        /// The feed.
        feed: String,
        /// A trusted key one of whose signatures is required (repeatable).
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        /// Or a keyless signer, `ISSUER=SUBJECT`, the certificate's OIDC issuer and subject
        /// (`*` matches anything), as cosign's --certificate-oidc-issuer and
        /// --certificate-identity (repeatable).
        #[arg(long = "identity", value_name = "ISSUER=SUBJECT")]
        identities: Vec<String>,
        /// Or a Notation signature whose certificate chains to this trust store (repeatable).
        #[arg(long = "store", value_name = "STORE")]
        stores: Vec<String>,
        /// And an attestation by one of the keys or identities: `TYPE [FIELD=GLOB]…`, the
        /// predicate type and the fields its predicate must match (a JSON pointer, or for
        /// SLSA provenance `builder_id`, `source_repository`, `source_ref`) (repeatable).
        #[arg(long = "attestation", value_name = "TYPE [FIELD=GLOB]…")]
        attestations: Vec<String>,
        /// Require the signature on a tag push into the feed too (sign the digest, then tag).
        #[arg(long)]
        on_push: bool,
        /// Check it on a pull from the feed too: `refuse` (403 without a passing signature)
        /// or `warn` (served with a Warning header).
        #[arg(long, value_name = "refuse|warn", value_parser = ["refuse", "warn"])]
        on_pull: Option<String>,
        /// Do not require it on promotion into the feed (with --on-push or --on-pull).
        #[arg(long)]
        no_promotion: bool,
        /// Remove the feed's signature policy.
        #[arg(long, conflicts_with_all = ["keys", "identities", "stores", "attestations", "on_push", "on_pull", "no_promotion"])]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustRootAction {
    /// Trust a Sigstore trusted root: a `trusted_root.json` file (the public-good instance's,
    /// as `cosign trusted-root create` or TUF give it, or a private Sigstore's).
    Add {
        /// The root's name (1 to 64 of a-z 0-9 . _ -).
        name: String,
        /// The `trusted_root.json` file (- for standard input).
        file: PathBuf,
    },
    /// List the trusted roots.
    List,
    /// Stop trusting a root: keyless signatures only it verified verify no more.
    Remove {
        /// The root's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustStoreAction {
    /// Trust the CA certificates of a PEM file as a trust store (Notation's `ca` type).
    Add {
        /// The store's name (1 to 64 of a-z 0-9 . _ -).
        name: String,
        /// The PEM file of one or more CA certificates (- for standard input).
        file: PathBuf,
    },
    /// List the trust stores.
    List,
    /// Stop trusting a store: Notation signatures only it verified verify no more.
    Remove {
        /// The store's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustKeyAction {
    /// Trust a public key: a PEM file, as cosign generate-key-pair writes cosign.pub
    /// (ECDSA P-256/P-384, Ed25519 or RSA).
    Add {
        /// The key's name, as policies name it (1 to 64 of a-z 0-9 . _ -).
        name: String,
        /// The PEM public key file (- for standard input).
        file: PathBuf,
    },
    /// List the trusted keys.
    List,
    /// Stop trusting a key: signatures by it verify no more.
    Remove {
        /// The key's name.
        name: String,
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
