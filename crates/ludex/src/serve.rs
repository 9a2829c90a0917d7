//! `ludex serve`: the API on a local listener, the inbox watcher, and a clean stop on
//! SIGINT/SIGTERM (stop accepting, finish in-flight requests and the running ingest, exit).

use crate::api::{self, AppState};
use crate::inbox;
use crate::ingest::Ingestor;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Serves until a stop signal. `inbox_root` is the local bucket folder to watch, if any.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    ingestor: Ingestor,
    inbox_root: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let inbox =
        inbox_root.map(|root| tokio::spawn(inbox::run(ingestor, root, stopped(stop_rx.clone()))));
    let app = api::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            tracing::info!(
                "stopping: no new connections; finishing requests and the running ingest"
            );
            let _ = stop_tx.send(true);
        })
        .await?;
    if let Some(inbox) = inbox {
        inbox.await??;
    }
    tracing::info!("stopped");
    Ok(())
}
