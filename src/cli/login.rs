//! `semdock login URL` and `semdock logout URL`: an API key for this machine, created with
//! the user's password and kept in the user's configuration directory (0600), used by every
//! `--server URL` command that is given no other key.
//!
//! The file is `$XDG_CONFIG_HOME/semdock/credentials.json` (else `~/.config/…`; on Windows
//! `%APPDATA%\semdock\credentials.json`): `{"servers": {URL: {"id": …, "key": …}}}`. A URL
//! finds its key by scheme, host and port (`localhost`, `127.0.0.1` and `[::1]` alike).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Default, Serialize, Deserialize)]
struct Credentials {
    servers: BTreeMap<String, Stored>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    key: String,
}

fn path() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("no configuration directory: set HOME or XDG_CONFIG_HOME")?;
    Ok(base.join("semdock").join("credentials.json"))
}

/// A server's base URL from what was typed after `--server` or `semdock login`:
/// `localhost:5000` means `http://localhost:5000`; a path (a `/ui/…` address copied from the
/// browser, `/api/v1`) and a trailing slash are dropped, since semdock serves from the root.
pub fn base_url(text: &str) -> anyhow::Result<String> {
    let typed = text.trim();
    let with_scheme = if typed.contains("://") {
        typed.to_owned()
    } else {
        format!("http://{typed}")
    };
    let explain = |why: &str| {
        anyhow::anyhow!(
            "{typed:?} is not a server address ({why}): give http(s)://HOST[:PORT], or HOST:PORT for http"
        )
    };
    let uri: ureq::http::Uri = with_scheme.parse().map_err(|e| explain(&format!("{e}")))?;
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(explain(&format!("{scheme}: is neither http nor https")));
    }
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| explain("no host"))?;
    if authority.as_str().contains('@') {
        bail!(
            "{typed:?} holds a user name or password: give the address alone, and log in with `semdock login` or an API key"
        );
    }
    Ok(format!(
        "{scheme}://{}",
        authority.as_str().to_ascii_lowercase()
    ))
}

/// Which stored login a server URL uses: its scheme, host and port, with `localhost`,
/// `127.0.0.1` and `[::1]` the same machine and the scheme's default port written out, so
/// that `http://127.0.0.1:5000/` finds the key `semdock login http://localhost:5000` kept.
fn credential_key(url: &str) -> String {
    let Ok(base) = base_url(url) else {
        return url.trim_end_matches('/').to_owned();
    };
    let Ok(uri) = base.parse::<ureq::http::Uri>() else {
        return base;
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = match uri.host().unwrap_or_default() {
        "localhost" | "127.0.0.1" | "[::1]" | "::1" => "localhost",
        other => other,
    };
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    format!("{scheme}://{host}:{port}")
}

fn load() -> anyhow::Result<Credentials> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a semdock credentials file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save(credentials: &Credentials) -> anyhow::Result<()> {
    let path = path()?;
    let dir = path.parent().context("credentials path has no directory")?;
    crate::store::owner_only::create_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("json.partial");
    let mut file = crate::store::owner_only::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    file.sync_all()?;
    crate::store::owner_only::restrict(&tmp)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

impl Credentials {
    /// Removes and returns the login kept for the server `url` names, however it was
    /// written when it was stored.
    fn take(&mut self, url: &str) -> Option<Stored> {
        let wanted = credential_key(url);
        let found = self
            .servers
            .keys()
            .find(|k| credential_key(k) == wanted)
            .cloned()?;
        self.servers.remove(&found)
    }
}

/// The key `semdock login` stored for `url`, if any.
pub fn stored_key(url: &str) -> anyhow::Result<Option<String>> {
    Ok(load()?.take(url).map(|s| s.key))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn basic(user: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

fn message(res: &mut ureq::http::Response<ureq::Body>) -> String {
    let text = res.body_mut().read_to_string().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text)
}

/// Asks for the user (unless given) and the password (from standard input with
/// `password_stdin`, else at the terminal without echo), creates a key for this machine
/// with the user's roles (and administrator rights, for an administrator) and stores it.
pub fn login(url: &str, user: Option<&str>, password_stdin: bool) -> anyhow::Result<()> {
    let url = base_url(url)?;
    let stdin = std::io::stdin();
    let user = match user {
        Some(u) => u.to_owned(),
        None if password_stdin => bail!("--password-stdin needs --username"),
        None => {
            eprint!("Username: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    let password = if password_stdin {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        rpassword::prompt_password("Password: ")?
    };
    let host = std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "this machine".to_owned());
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut res = agent()
        .post(&format!("{url}/api/v1/keys"))
        .header("Authorization", &basic(&user, &password))
        .content_type("application/json")
        .send(
            json!({"name": format!("semdock CLI on {host}, {created}"), "admin": true, "owner_roles": true})
                .to_string(),
        )
        .with_context(|| format!("cannot reach {url}"))?;
    if !res.status().is_success() {
        let status = res.status();
        bail!(
            "login to {url} failed: {} (HTTP {status})",
            message(&mut res)
        );
    }
    let body: serde_json::Value = serde_json::from_str(&res.body_mut().read_to_string()?)?;
    let (Some(id), Some(key)) = (body["id"].as_str(), body["key"].as_str()) else {
        bail!("{url} answered the key request without a key");
    };
    let mut credentials = load()?;
    let previous = credentials.take(&url);
    credentials.servers.insert(
        url.clone(),
        Stored {
            id: id.to_owned(),
            key: key.to_owned(),
        },
    );
    save(&credentials)?;
    if let Some(old) = previous {
        // The key of an earlier login is no longer needed.
        let _ = revoke(&url, &old);
    }
    println!(
        "logged in to {url} as {user}; the key {id} is in {}",
        path()?.display()
    );
    Ok(())
}

fn revoke(url: &str, stored: &Stored) -> anyhow::Result<()> {
    let mut res = agent()
        .delete(&format!("{url}/api/v1/keys/{}", stored.id))
        .header("Authorization", &basic("api", &stored.key))
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    match res.status().as_u16() {
        // Already gone (revoked elsewhere, or its owner was removed): nothing to undo.
        204 | 401 | 404 => Ok(()),
        status => bail!(
            "revoking the key at {url} failed: {} (HTTP {status})",
            message(&mut res)
        ),
    }
}

/// Revokes the key stored for `url` and forgets it.
pub fn logout(url: &str) -> anyhow::Result<()> {
    let url = base_url(url)?;
    let mut credentials = load()?;
    let Some(stored) = credentials.take(&url) else {
        bail!("not logged in to {url}");
    };
    revoke(&url, &stored)?;
    save(&credentials)?;
    println!("logged out of {url}: key {} revoked", stored.id);
    Ok(())
}
