//! `semdock service`: the registry as the Windows service `semdock`. The Service Control
//! Manager starts the process; a stop or shutdown request reports `StopPending`, lets
//! in-flight requests finish, closes the database and reports `Stopped`.

use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

use crate::config::Config;
use crate::{server, telemetry};

const NAME: &str = "semdock";

/// The configuration, handed from `run` to the service main the dispatcher calls.
static CONFIG: OnceLock<Config> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Connects to the Service Control Manager; returns when the service has stopped.
pub fn run(config: Config) -> anyhow::Result<()> {
    let _ = CONFIG.set(config);
    service_dispatcher::start(NAME, ffi_service_main).context(
        "not started by the Service Control Manager: install the .msi, or run `semdock serve`",
    )
}

fn status(state: ServiceState, accept: ServiceControlAccept, wait: Duration) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(0),
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(config) = CONFIG.get().cloned() else {
        return;
    };
    telemetry::init(&config.log);
    if let Err(e) = serve(&config) {
        tracing::error!(error = %format!("{e:#}"), "the semdock service failed");
    }
}

fn serve(config: &Config) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = std::sync::Mutex::new(Some(stop_tx));
    let handle = service_control_handler::register(NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(tx) = stop_tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    handle.set_service_status(status(
        ServiceState::StartPending,
        ServiceControlAccept::empty(),
        Duration::from_secs(30),
    ))?;
    let result = server::open(config)
        .map_err(anyhow::Error::from)
        .and_then(|services| {
            handle.set_service_status(status(
                ServiceState::Running,
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
                Duration::ZERO,
            ))?;
            let stopping = async move {
                let _ = stop_rx.await;
                let _ = handle.set_service_status(status(
                    ServiceState::StopPending,
                    ServiceControlAccept::empty(),
                    Duration::from_mins(1),
                ));
            };
            actix_web::rt::System::new()
                .block_on(server::serve_until(config, services, stopping))
                .map_err(anyhow::Error::from)
        });
    let code = u32::from(result.is_err());
    handle.set_service_status(ServiceStatus {
        exit_code: ServiceExitCode::Win32(code),
        ..status(
            ServiceState::Stopped,
            ServiceControlAccept::empty(),
            Duration::ZERO,
        )
    })?;
    result
}
