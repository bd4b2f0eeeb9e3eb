//! The shipped HAProxy configuration (`packaging/haproxy.cfg`) for a test or a benchmark:
//! its own address, its own nodes. Shared by the load benchmark and `tests/it/common/cluster.rs`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `packaging/haproxy.cfg` listening on `bind`, in front of `nodes` (addresses), checking
/// each every `check_interval`.
pub fn config(bind: &str, nodes: &[String], check_interval: &str) -> String {
    let mut config = String::new();
    for line in include_str!("../../packaging/haproxy.cfg").lines() {
        if line.starts_with("  bind ") {
            writeln!(config, "  bind {bind}").unwrap();
        } else if !line.starts_with("  server ") {
            writeln!(config, "{line}").unwrap();
        }
    }
    for (i, addr) in nodes.iter().enumerate() {
        writeln!(
            config,
            "  server node{i} {addr} check inter {check_interval} fall 2 rise 1"
        )
        .unwrap();
    }
    config
}

/// Writes `config(bind, nodes, check_interval)` into `dir`, has HAProxy check it, and starts
/// it in the foreground (`-db`, so that the child's PID is HAProxy's own); the caller waits
/// for it to answer and stops it by that PID.
pub fn spawn(dir: &Path, bind: &str, nodes: &[String], check_interval: &str) -> Child {
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config(bind, nodes, check_interval)).unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("haproxy is installed");
    assert!(
        check.status.success(),
        "haproxy refuses the configuration: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy starts")
}
