//! `ludex serve`: the API on a local listener, the inbox watcher, and a clean stop on
//! SIGINT/SIGTERM (stop accepting, finish in-flight requests and the running ingest, exit).

use crate::api::{self, AppState};
use crate::inbox;
use crate::ingest::Ingestor;
use crate::keys::{KeyFile, Keys};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
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

/// Re-reads the key file when it changes, so new keys work without a restart.
async fn reload_keys(path: PathBuf, keys: Arc<Keys>, mut stop: watch::Receiver<bool>) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = modified(&path);
        if now != seen {
            seen = now;
            match KeyFile::new(&path).ring() {
                Ok(ring) => {
                    keys.replace(ring);
                    tracing::info!(file = %path.display(), "API keys reloaded");
                }
                Err(e) => tracing::error!(error = %e, "API keys not reloaded"),
            }
        }
    }
}

/// Serves until a stop signal. `inbox_root` is the local bucket folder to watch, if any.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    ingestor: Ingestor,
    inbox_root: Option<PathBuf>,
    key_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let inbox =
        inbox_root.map(|root| tokio::spawn(inbox::run(ingestor, root, stopped(stop_rx.clone()))));
    if let Some(path) = key_file {
        tokio::spawn(reload_keys(path, Arc::clone(&state.keys), stop_rx.clone()));
    }
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
