//! Logging through tracing, as text or JSON lines on standard error or in daily files.

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{LogConfig, LogFormat};

/// Daily log files kept in `log.dir`.
const LOG_FILES_KEPT: usize = 14;

/// actix-http logs every request it cannot parse at ERROR, among them the TLS handshake
/// docker and skopeo try first on a plain-HTTP port: an alert on ERROR would page someone
/// for each `docker login`. Those lines are off unless the filter names `actix_http` itself
/// (`info,actix_http=debug` shows them again).
///
/// The access log (target [`ACCESS_TARGET`]) is off unless `log.access` is on or the filter
/// names the target itself: one line per request drowned everything else (619 of 687
/// lines of a newcomer's session), and the request metrics count them anyway.
fn filter_of(level: &str, access: bool) -> String {
    let mut filter = level.to_owned();
    if !level.contains("actix_http") {
        filter.push_str(",actix_http::h1::dispatcher=off");
    }
    if !level.contains(ACCESS_TARGET) {
        filter.push_str(if access {
            ",semdock::request=info"
        } else {
            ",semdock::request=off"
        });
    }
    filter
}

/// The tracing target of the access log's lines (`crate::http::access_log`).
pub const ACCESS_TARGET: &str = "semdock::request";

/// Installs the global subscriber; a second call (as in tests) leaves the first in place.
/// A panic is logged too, so that one in a Windows service (no standard error) is seen.
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(filter_of(&log.level, log.access)).unwrap_or_else(|e| {
        eprintln!("log level {:?} is invalid ({e}); using info", log.level);
        EnvFilter::new(filter_of("info", log.access))
    });
    let files = log.dir.as_ref().and_then(|dir| {
        RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix("semdock")
            .filename_suffix("log")
            .max_log_files(LOG_FILES_KEPT)
            .build(dir)
            .inspect_err(|e| {
                eprintln!(
                    "cannot log to {}: {e}; logging to standard error",
                    dir.display()
                );
            })
            .ok()
    });
    let (writer, ansi) = match files {
        Some(files) => (BoxMakeWriter::new(files), false),
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if installed.is_ok() {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            tracing::error!(
                thread = thread.name().unwrap_or("unnamed"),
                panic = %info,
                "a thread panicked"
            );
            default_hook(info);
        }));
    }
}
