//! The shipped HAProxy configuration (`packaging/haproxy.cfg`) for a test or a benchmark:
//! its own address, its own nodes. Shared by the load benchmark and `tests/common/cluster.rs`.

use std::fmt::Write as _;

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
