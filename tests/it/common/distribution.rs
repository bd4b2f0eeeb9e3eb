//! Distribution 2.8.2 (Debian's `docker-registry`) on loopback, for the tests that need
//! another registry: a connector's upstream, a replication target.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run;

/// Distribution 2.8.2 on loopback, its log in a file to count what it was asked.
pub struct Distribution {
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Distribution {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// With `basic` (user, password): Basic authentication from an htpasswd file (bcrypt,
    /// written by Apache's `htpasswd`), as Distribution documents it.
    pub fn start_with(basic: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let auth = match basic {
            Some((user, password)) => {
                let file = dir.path().join("htpasswd");
                run(Command::new("htpasswd")
                    .args(["-B", "-b", "-c"])
                    .arg(&file)
                    .args([user, password]));
                format!(
                    "auth:\n  htpasswd:\n    realm: upstream\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let mut d = Self {
            child: None,
            addr,
            log,
            config,
            _dir: dir,
        };
        d.run();
        d
    }

    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "Distribution did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests it answered for paths containing `part` (`/blobs/`, `/manifests/`).
    pub fn requests(&self, method: &str, part: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("response completed"))
            .filter(|l| l.contains(&format!("http.request.method={method}")))
            .filter(|l| l.contains(part))
            .count()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}
