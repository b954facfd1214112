//! Signals: one future that resolves on SIGTERM or SIGINT, and SIGHUP for reloads.

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Calls `on_hangup` for every SIGHUP, forever (nothing on other platforms).
pub async fn on_hangup(on_hangup: impl Fn()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            while hangups.recv().await.is_some() {
                on_hangup();
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = on_hangup;
        std::future::pending::<()>().await;
    }
}
