//! `pixlpay-sim`: the Pixlpay simulator as a standalone server, for the demo and for poking at it with curl.

use std::time::Duration;

use clap::Parser;
use pixlpay_sim::{SimConfig, Simulator};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A faithful local Pixlpay API (products, webhooks) with a /_sim/ control API"
)]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 8480)]
    port: u16,
    /// Products to seed (deterministic: the same seed gives the same catalog).
    #[arg(long, default_value_t = 100)]
    products: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests per minute allowed for the default token.
    #[arg(long, default_value_t = 60)]
    rpm: u32,
    /// The default API token (Full Access).
    #[arg(long, default_value = "sk_test_simulator")]
    token: String,
    /// Length of the sliding rate-limit window in milliseconds (Pixlpay: a minute).
    #[arg(long, default_value_t = 60_000)]
    window_ms: u64,
    /// Real seconds per documented second of the webhook retry schedule (0.01: 1 minute becomes 0.6 s).
    #[arg(long, default_value_t = 1.0)]
    webhook_time_scale: f64,
    /// Serve the announced PUT /products/{id}.
    #[arg(long)]
    writes: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut config = SimConfig {
        port: args.port,
        products: args.products,
        seed: args.seed,
        token: args.token,
        rpm: args.rpm,
        rate_window: Duration::from_millis(args.window_ms.max(1)),
        webhook_time_scale: args.webhook_time_scale.max(0.0),
        ..SimConfig::default()
    };
    config.settings.writes_enabled = args.writes;
    let sim = Simulator::start(config).await?;
    // One line on stdout that scripts wait for.
    println!(
        "pixlpay-sim listening on {} ({} products)",
        sim.store_url(),
        args.products
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
