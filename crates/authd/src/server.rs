//! Serving authd with the shared accept loop (crate `server`): over HTTPS when the
//! configuration has a certificate, looked up at each handshake so a reload replaces it, and
//! `/metrics` on a listener of its own when `server.debug.addr` is set.

use std::future::Future;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::Error;
use crate::http;

/// Serves until `shutdown` resolves; `metrics` is the separate `/metrics` listener, if any.
///
/// # Errors
/// [`Error::Io`] when the listener has no address, [`Error::Tls`] when TLS cannot be set up.
pub async fn serve(
    listener: impl Into<server::Listener>,
    metrics: Option<TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = listener.into();
    let addr = listener.local().map_err(|e| Error::io("listener", e))?;
    let config = app.config.load();
    let limits = config.limits;
    let tls = match config.tls {
        Some(_) => Some(
            server::tls::acceptor(Arc::new(CurrentCert(app.clone())), &config.tls_policy)
                .map_err(|e| Error::Tls(e.to_string()))?,
        ),
        None => None,
    };
    let stop = server::Stop::on(shutdown);
    if let Some(metrics) = metrics {
        let at = metrics
            .local_addr()
            .map_err(|e| Error::io("metrics listener", e))?;
        tracing::info!(%at, "serving /metrics on {at}");
        let router = server::metrics::router(app.metrics.clone());
        tokio::spawn(server::serve(
            metrics,
            router,
            None,
            limits,
            stop.clone().wait(),
        ));
    }
    tracing::info!(%addr, tls = tls.is_some(), "listening on {addr}");
    let router = http::router(
        app.clone(),
        config.debug_addr.is_none(),
        &config.path_prefix,
    );
    drop(config);
    server::serve(listener, router, tls, limits, stop.wait()).await;
    Ok(())
}

/// Hands rustls the certificate of the configuration in force.
#[derive(Debug)]
struct CurrentCert(Arc<App>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.config.load().tls.clone()
    }
}
