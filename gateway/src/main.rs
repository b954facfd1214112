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
    // Before the runtime's threads exist: socket activation edits the environment.
    let listeners = match gateway::listen::open(&config.web) {
        Ok(listeners) => listeners,
        Err(e) => {
            tracing::error!(err = %e, "cannot listen");
            eprintln!("pushgateway: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting pushgateway");
        let mut bound = Vec::with_capacity(listeners.len());
        let mut serving = Vec::with_capacity(listeners.len());
        for listener in listeners {
            // Port 0 binds a free port: report the one really bound, in the log and, if
            // asked, in a file that test harnesses and supervisors can wait for.
            match listener.local_addr() {
                Ok(address) => {
                    tracing::info!(address = %address, "Listening on");
                    bound.push(address);
                }
                Err(e) => tracing::warn!(err = %e, "cannot read a bound address"),
            }
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serving.push(listener),
                Err(e) => {
                    tracing::error!(err = %e, "cannot serve a listening socket");
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Some(path) = &config.web.listen_address_file {
            if let Err(e) = write_listen_addresses(path, &bound) {
                tracing::error!(path = %path.display(), err = %e, "cannot write the listen address file");
                return ExitCode::FAILURE;
            }
        }
        match gateway::run(config, serving, gateway::signal::terminated()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(err = %e, "cannot start");
                eprintln!("pushgateway: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Writes one line per address to `path` atomically (a temporary file renamed into place),
/// so that a reader never sees a partial file. The first line is the first listener, as the
/// file held only that one before listeners could be repeated.
fn write_listen_addresses(
    path: &std::path::Path,
    addresses: &[std::net::SocketAddr],
) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let text: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}
