//! An `OpenID Connect` provider on loopback for the sign-in tests: the npm package
//! `oidc-provider` (scripts/test installs it) in the small server `tests/oidc/provider.mjs`,
//! with users and groups the test sets, and the semdock environment that points at it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The provider's node process, stopped by its PID at the end.
pub struct Provider {
    child: Option<Child>,
    pub issuer: String,
}

/// Where scripts/test installed `oidc-provider`.
fn modules() -> PathBuf {
    std::env::var_os("OIDC_PROVIDER_MODULES").map_or_else(
        || PathBuf::from("/var/cache/semdock-tools/oidc/node_modules"),
        PathBuf::from,
    )
}

impl Provider {
    pub fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(modules())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is installed (scripts/test installs nodejs and oidc-provider)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // The rest of its output is read (and dropped) so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("ISSUER=")
            .unwrap_or_else(|| panic!("the OIDC provider did not start: {line:?}"))
            .to_owned();
        Self {
            child: Some(child),
            issuer,
        }
    }

    fn post(&self, path: &str, body: &serde_json::Value) {
        let res = super::http()
            .post(&format!("{}{path}", self.issuer))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(res.status(), 204, "{path}");
    }

    /// Registers the client's redirect URI: semdock's `/ui/oidc/callback` at `base`.
    pub fn client(&self, base: &str) {
        self.post(
            "/_test/client",
            &serde_json::json!({ "redirect_uri": format!("{base}/ui/oidc/callback") }),
        );
    }

    /// Creates or changes a user.
    pub fn user(&self, name: &str, groups: &[&str], disabled: bool) {
        self.post(
            "/_test/users",
            &serde_json::json!({ "name": name, "groups": groups, "disabled": disabled }),
        );
    }

    /// Creates or changes the user `id` (its `sub`) whose `preferred_username` is `username`.
    pub fn user_named(&self, id: &str, username: &str, groups: &[&str]) {
        self.post(
            "/_test/users",
            &serde_json::json!({ "name": id, "username": username, "groups": groups, "disabled": false }),
        );
    }

    /// A workload identity token from this issuer, as a CI system hands one to a job: for
    /// `audience`, with `claims`, expiring in `expires_in` seconds (negative: already).
    pub fn workload_token(
        &self,
        audience: &str,
        claims: &serde_json::Value,
        expires_in: i64,
    ) -> String {
        let mut res = super::http()
            .post(&format!("{}/_test/workload-token", self.issuer))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"audience": audience, "claims": claims, "expires_in": expires_in}).to_string())
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        body["value"].as_str().unwrap().to_owned()
    }

    /// Replaces the signing key in the published JWKS.
    pub fn rotate(&self) {
        self.post("/_test/rotate", &serde_json::json!({}));
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// semdock's configuration for the provider: groups `devs` push to `prod`, `registry-admins`
/// administer; every account is asked about again every half second.
pub fn oidc_env(provider: &Provider) -> Vec<(String, String)> {
    vec![
        (
            "SEMDOCK_DIRECTORY__OIDC__ISSUER".into(),
            provider.issuer.clone(),
        ),
        (
            "SEMDOCK_DIRECTORY__OIDC__CLIENT_ID".into(),
            "semdock".into(),
        ),
        (
            "SEMDOCK_DIRECTORY__OIDC__CLIENT_SECRET".into(),
            "semdock-client-secret".into(),
        ),
        (
            "SEMDOCK_DIRECTORY__OIDC__SCOPES".into(),
            "[\"openid\",\"profile\",\"groups\",\"offline_access\"]".into(),
        ),
        ("SEMDOCK_DIRECTORY__OIDC__PROMPT".into(), "consent".into()),
        (
            "SEMDOCK_DIRECTORY__OIDC__LABEL".into(),
            "Sign in with Example ID".into(),
        ),
        (
            "SEMDOCK_DIRECTORY__GROUPS".into(),
            "[{group=\"devs\",feed=\"prod\",role=\"push\"},{group=\"registry-admins\",admin=true}]"
                .into(),
        ),
        ("SEMDOCK_DIRECTORY__CACHE_SECONDS".into(), "1".into()),
    ]
}
