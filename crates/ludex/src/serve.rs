//! `ludex serve`: the API on a local listener, the inbox watcher, and a clean stop on
//! SIGINT/SIGTERM (stop accepting, finish in-flight requests and the running ingest, exit).

use crate::api::{self, AppState};
use crate::connections::{self, ConnectionLimits};
use crate::inbox;
use crate::ingest::Ingestor;
use ludex_domain::{Catalog, Retention};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
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

/// How often `serve` prunes the history, when a retention is set (and once as it starts).
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Prunes the history as `retention` says, now and every [`PRUNE_EVERY`], until `stop`.
async fn prune_history(
    catalog: Arc<dyn Catalog>,
    retention: Retention,
    stop: impl std::future::Future<Output = ()>,
) {
    if retention.keeps_all() {
        return;
    }
    let rounds = async {
        loop {
            match crate::store::prune_history(catalog.as_ref(), &retention, usize::MAX).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "history pruned"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the history failed; trying again later")
                }
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    };
    tokio::select! {
        () = stop => {}
        () = rounds => {}
    }
}

/// Serves until a stop signal, ingesting what arrives in the ingestor's bucket under
/// `uploads/`: a local folder is watched, a remote bucket listed every `poll_every`. The
/// connections are served under `limits` (`max_connections` already fitted to the open-files
/// limit, see [`connections::connection_budget`]). The history is pruned as `retention` says.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    ingestor: Ingestor,
    poll_every: Duration,
    limits: ConnectionLimits,
    retention: Retention,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let pruner = tokio::spawn(prune_history(
        Arc::clone(&state.stores.catalog),
        retention,
        stopped(stop_rx.clone()),
    ));
    let inbox = match ingestor.bucket().local_root().map(Path::to_path_buf) {
        Some(root) => tokio::spawn(inbox::run(ingestor, root, stopped(stop_rx.clone()))),
        None => tokio::spawn(async move {
            inbox::poll(ingestor, poll_every, stopped(stop_rx)).await;
            Ok(())
        }),
    };
    connections::serve(listener, api::router(state), limits, async move {
        stop_signal().await;
        tracing::info!("stopping: no new connections; finishing requests and the running ingest");
        let _ = stop_tx.send(true);
    })
    .await;
    inbox.await??;
    pruner.await?;
    tracing::info!("stopped");
    Ok(())
}
