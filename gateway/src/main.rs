//! The `pushgateway` binary: parse the configuration, set up logging, bind, run.

use std::process::ExitCode;

use gateway::config::{Config, ConfigError};

/// Exit code for a command line that cannot be used (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Usage(e)) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
        Err(e) => {
            eprintln!("pushgateway: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    gateway::telemetry::init_logging(config.log_level, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pushgateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(config.web.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(address = %config.web.listen, err = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        // Port 0 binds a free port: report the one really bound, in the log and, if asked,
        // in a file that test harnesses and supervisors can wait for.
        let bound = listener.local_addr().unwrap_or(config.web.listen);
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting pushgateway");
        tracing::info!(address = %bound, "Listening on");
        if let Some(path) = &config.web.listen_address_file {
            if let Err(e) = write_listen_address(path, bound) {
                tracing::error!(path = %path.display(), err = %e, "cannot write the listen address file");
                return ExitCode::FAILURE;
            }
        }
        match gateway::run(config, listener, gateway::signal::terminated()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(err = %e, "cannot start");
                eprintln!("pushgateway: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Writes `address` to `path` atomically (a temporary file renamed into place), so that a
/// reader never sees a partial line.
fn write_listen_address(
    path: &std::path::Path,
    address: std::net::SocketAddr,
) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{address}\n"))?;
    std::fs::rename(&temporary, path)
}
