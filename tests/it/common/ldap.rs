//! `OpenLDAP` (Debian's `slapd`) on loopback for the directory tests: a tree the test writes
//! (users, groups, a disabled account), `StartTLS` with a test CA, and the semdock
//! environment that points at it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run;

pub const SUFFIX: &str = "dc=example,dc=com";
const ROOT: &str = "cn=admin,dc=example,dc=com";
const ROOT_PW: &str = "root-secret";

/// slapd on a port of its own, stopped by its PID at the end.
pub struct Slapd {
    child: Option<Child>,
    pub url: String,
    dir: tempfile::TempDir,
}

impl Slapd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        super::make_certificates(p);
        std::fs::create_dir_all(p.join("db")).unwrap();
        std::fs::write(
            p.join("slapd.conf"),
            format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\ninclude /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {pid}\nTLSCACertificateFile {d}/ca.crt\nTLSCertificateFile {d}/cert.pem\nTLSCertificateKeyFile {d}/key.pem\ndatabase mdb\nmaxsize 104857600\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT}\"\nrootpw {ROOT_PW}\ndirectory {d}/db\n",
                pid = p.join("slapd.pid").display(),
                d = p.display()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ldap://127.0.0.1:{port}");
        let mut s = Self {
            child: None,
            url,
            dir,
        };
        s.run();
        s.modify(
            "ldapadd",
            &format!(
                "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
                 dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
                 dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
                 dn: uid=alice,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nuserPassword: alice-pass\n\n\
                 dn: uid=bob,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\ndescription: disabled\nuserPassword: bob-pass\n\n\
                 dn: uid=carol,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\nuserPassword: carol-pass\n\n\
                 dn: cn=devs,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: devs\nmember: uid=alice,ou=people,{SUFFIX}\nmember: uid=bob,ou=people,{SUFFIX}\n\n\
                 dn: cn=registry-admins,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: registry-admins\nmember: uid=carol,ou=people,{SUFFIX}\n"
            ),
        );
        s
    }

    fn run(&mut self) {
        let p = self.dir.path();
        let child = Command::new("slapd")
            .arg("-f")
            .arg(p.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{}/", self.url))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("slapd.log")).unwrap())
            .spawn()
            .expect("slapd is installed (scripts/test installs it)");
        self.child = Some(child);
        let addr = self.url.trim_start_matches("ldap://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not start: {}",
                std::fs::read_to_string(p.join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `ldapadd` or `ldapmodify` as the root DN with `ldif`.
    pub fn modify(&self, tool: &str, ldif: &str) {
        let file = self.dir.path().join("change.ldif");
        std::fs::write(&file, ldif).unwrap();
        run(Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ROOT, "-w", ROOT_PW, "-f"])
            .arg(&file));
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// semdock's environment for this directory: `StartTLS` verified against the test CA, the
/// root DN as service account, disabled accounts excluded by the filter, `devs` pushing to
/// `prod`, `registry-admins` administrators, a one-second cache.
pub fn directory_env(slapd: &Slapd) -> Vec<(String, String)> {
    vec![
        ("SEMDOCK_DIRECTORY__LDAP__URL".into(), slapd.url.clone()),
        ("SEMDOCK_DIRECTORY__LDAP__STARTTLS".into(), "true".into()),
        (
            "SEMDOCK_DIRECTORY__LDAP__CA_FILE".into(),
            slapd.ca().display().to_string(),
        ),
        ("SEMDOCK_DIRECTORY__LDAP__BIND_DN".into(), ROOT.into()),
        ("SEMDOCK_DIRECTORY__LDAP__BIND_PASSWORD".into(), ROOT_PW.into()),
        (
            "SEMDOCK_DIRECTORY__LDAP__USER_BASE".into(),
            format!("ou=people,{SUFFIX}"),
        ),
        (
            "SEMDOCK_DIRECTORY__LDAP__USER_FILTER".into(),
            "\"(&(uid={user})(!(description=disabled)))\"".into(),
        ),
        (
            "SEMDOCK_DIRECTORY__LDAP__GROUP_BASE".into(),
            format!("ou=groups,{SUFFIX}"),
        ),
        (
            "SEMDOCK_DIRECTORY__GROUPS".into(),
            "[{group=\"devs\",feed=\"prod\",role=\"push\"},{group=\"cn=registry-admins,ou=groups,dc=example,dc=com\",admin=true}]".into(),
        ),
        ("SEMDOCK_DIRECTORY__CACHE_SECONDS".into(), "1".into()),
    ]
}
