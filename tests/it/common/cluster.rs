//! Several `semdock serve` nodes over one PostgreSQL database and one S3 bucket, and HAProxy
//! in front of them with the shipped `packaging/haproxy.cfg`.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::{Server, basic};

use super::support::haproxy;

/// HAProxy in front of the nodes, stopped by its PID when dropped.
pub struct LoadBalancer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LoadBalancer {
    pub fn start(nodes: &[&Server]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
        let child = haproxy::spawn(dir.path(), &format!("127.0.0.1:{port}"), &addrs, "300ms");
        let lb = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !super::http()
            .get(&lb.url("/readyz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                Instant::now() < deadline,
                "the load balancer never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        lb
    }

    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Nodes over one database and one bucket prefix, each with a data directory of its own.
pub struct Cluster {
    pub nodes: Vec<Server>,
    /// The administrator's password, when the storage already held one (else the first
    /// node's initial password).
    admin_password: Option<String>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes on a new database of the test PostgreSQL server and a new prefix of the test
    /// bucket.
    pub fn start(n: usize) -> Self {
        Self::start_on(n, &super::postgres_database(), &super::s3_location())
    }

    pub fn start_on(n: usize, database: &str, s3: &semdock::store::blobs::s3::S3Location) -> Self {
        Self::start_bin(Path::new(env!("CARGO_BIN_EXE_semdock")), n, database, s3)
    }

    /// `n` nodes on a new database and bucket prefix, with `extra` environment.
    pub fn start_with(n: usize, extra: &[(&str, &str)]) -> Self {
        let mut cluster = Self::configured(
            Path::new(env!("CARGO_BIN_EXE_semdock")),
            &super::postgres_database(),
            &super::s3_location(),
        );
        cluster.env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        cluster.start_nodes(n);
        cluster
    }

    /// `n` nodes on storage that already holds a registry whose administrator has
    /// `admin_password` (what `storage migrate` wrote, say).
    pub fn start_existing(
        n: usize,
        database: &str,
        s3: &semdock::store::blobs::s3::S3Location,
        admin_password: &str,
    ) -> Self {
        let mut cluster = Self::configured(Path::new(env!("CARGO_BIN_EXE_semdock")), database, s3);
        cluster.admin_password = Some(admin_password.to_owned());
        cluster.start_nodes(n);
        cluster
    }

    /// `n` nodes of the binary `bin` (a release build, say).
    pub fn start_bin(
        bin: &Path,
        n: usize,
        database: &str,
        s3: &semdock::store::blobs::s3::S3Location,
    ) -> Self {
        let mut cluster = Self::configured(bin, database, s3);
        cluster.start_nodes(n);
        cluster
    }

    fn configured(bin: &Path, database: &str, s3: &semdock::store::blobs::s3::S3Location) -> Self {
        let env = vec![
            ("SEMDOCK_STORAGE__METADATA".into(), "postgres".into()),
            ("SEMDOCK_STORAGE__POSTGRES__URL".into(), database.to_owned()),
            ("SEMDOCK_STORAGE__BLOBS".into(), "s3".into()),
            (
                "SEMDOCK_STORAGE__S3__ENDPOINT".into(),
                s3.endpoint.clone().unwrap(),
            ),
            ("SEMDOCK_STORAGE__S3__BUCKET".into(), s3.bucket.clone()),
            ("SEMDOCK_STORAGE__S3__REGION".into(), s3.region.clone()),
            ("SEMDOCK_STORAGE__S3__PREFIX".into(), s3.prefix.clone()),
            (
                "SEMDOCK_STORAGE__S3__ACCESS_KEY_ID".into(),
                s3.access_key_id.clone(),
            ),
            (
                "SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY".into(),
                s3.secret_access_key.clone(),
            ),
        ];
        Self {
            nodes: Vec::new(),
            admin_password: None,
            env,
            dir: tempfile::tempdir().unwrap(),
            bin: bin.to_owned(),
        }
    }

    fn start_nodes(&mut self, n: usize) {
        for i in 0..n {
            let node = self.start_node(i);
            self.nodes.push(node);
        }
    }

    /// Starts node `i` (again, after a crash: same data directory).
    pub fn start_node(&self, i: usize) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut node =
            Server::start_bin(&self.bin, &self.dir.path().join(format!("node{i}")), &env);
        // The first node created the administrator; the others share it through the database.
        if let Some(known) = &self.admin_password {
            node.admin_password.clone_from(known);
        } else if let Some(first) = self.nodes.first() {
            node.admin_password.clone_from(&first.admin_password);
        }
        assert!(!node.admin_password.is_empty());
        node
    }

    /// Switches versioning on for `feed`, through the first node.
    pub fn versioned(&self, feed: &str) {
        let res = super::http_as(Some(self.admin()))
            .patch(&self.nodes[0].url(&format!("/api/v1/feeds/{feed}")))
            .header("Content-Type", "application/json")
            .send(r#"{"versioning": true}"#)
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    pub fn admin(&self) -> String {
        basic("admin", &self.nodes[0].admin_password)
    }
}
