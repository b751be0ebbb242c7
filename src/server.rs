//! Serving with graceful shutdown: stop accepting, finish in-flight
//! requests, then wait for the background writes they started.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

use crate::{build_app, AppState};

/// How long shutdown waits for background writes after the last response.
const DRAIN_BACKGROUND: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = state.background.clone();
    let app = build_app(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    background.close();
    if tokio::time::timeout(DRAIN_BACKGROUND, background.wait())
        .await
        .is_err()
    {
        tracing::error!(
            pending = background.len(),
            "background writes still pending at shutdown"
        );
    }
    Ok(())
}
