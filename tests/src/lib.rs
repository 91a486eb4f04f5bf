//! A faithful Pixlpay simulator (pixlpay-api.md), for the integration tests, the benchmarks and the demo.
//!
//! `Simulator::start` serves it on a loopback port of its own (port 0 picks a free one), so every test can run its
//! own store in parallel; the `pixlpay-sim` binary serves the same thing from the command line.
#![deny(clippy::all)]
// Handlers return axum `Response`s as their error: large, but the natural early return of a web handler.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod catalog;
pub mod control;
pub mod control_client;
pub mod delivery;
pub mod local_aws;
pub mod pipeline;
pub mod state;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control_client::SimControl;

/// The webhook secret of local runs: the demo's functions are configured with it and the signed fixtures in
/// `events/` verify with it. Never used outside this machine.
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_local_demo_0123456789abcdef";
pub use state::{Faults, Settings, SimConfig, SimState};

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    pub addr: SocketAddr,
    pub state: SimState,
    server: JoinHandle<()>,
}

impl Simulator {
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        Self::serve(listener, config)
    }

    pub fn serve(listener: TcpListener, config: SimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let state = SimState::new(config);
        let app = app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("simulator server failed");
        });
        Ok(Self { addr, state, server })
    }

    /// The store URL to configure a client with (`http://127.0.0.1:PORT`).
    pub fn store_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn control(&self) -> SimControl {
        SimControl::new(&self.store_url())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn app(state: SimState) -> Router {
    Router::new()
        .nest(api::API_PREFIX, api::router(state.clone()))
        .nest("/_sim", control::router(state))
}
