//! `pixlpay-bench`: the full sync's and the webhooks' speed and cost, printed as tables (`./dev bench`).
//!
//! Runs `pixlpay-sim` as its own process (so its memory is not counted), syncs its catalog into MiniStack, and for
//! each phase reports wall time against two baselines measured in the same run: the rate-limit floor
//! (`ceil(N/100)` requests at the configured rpm) and a bare catalog walk with the same client and no writes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[path = "bench_webhook.rs"]
mod bench_webhook;
use pixlpay_sim::local_aws::LocalAws;
use pixlpay_sim::{Faults, SimControl};
use pixlpay_sync::Secret;
use pixlpay_sync::pixlpay::{PixlpayClient, PixlpayConfig};
use pixlpay_sync::sync::{FullSync, FullSyncConfig, RunOptions, RunOutcome, RunRecord};
use serde_json::json;
use time::OffsetDateTime;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks the full sync against pixlpay-sim and MiniStack")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    products: u64,
    /// Requests per minute for the token (the simulator enforces it; the client paces to it).
    #[arg(long, default_value_t = 600)]
    rpm: u32,
    /// Added to every simulator response, to stand in for the Internet between Lambda and Pixlpay.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Share of products changed before the third sync.
    #[arg(long, default_value_t = 0.01)]
    changed: f64,
    /// Signed deliveries timed in process for the webhook handler's latency.
    #[arg(long, default_value_t = 20_000)]
    webhook_requests: usize,
    /// Product changes in the end-to-end webhook burst, spread over `--burst-products`.
    #[arg(long, default_value_t = 1_000)]
    burst_changes: u64,
    #[arg(long, default_value_t = 100)]
    burst_products: u64,
    /// Path of the pixlpay-sim binary.
    #[arg(long, default_value = "target/release/pixlpay-sim")]
    sim: String,
}

struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(args: &Args) -> (SimProcess, String) {
    let mut child = Command::new(&args.sim)
        .args([
            "--port",
            "0",
            "--products",
            &args.products.to_string(),
            "--rpm",
            &args.rpm.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with cargo build --profile bench --bin pixlpay-sim)",
                args.sim
            )
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the simulator prints its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL")
        .to_owned();
    (SimProcess(child), url)
}

/// Peak resident memory of this process since the last reset, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Row {
    phase: String,
    wall: Duration,
    requests: u64,
    rate_limited: u64,
    written: Option<u64>,
    events: Option<u64>,
    peak_mib: f64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (_sim, url) = start_sim(&args);
    let control = SimControl::new(&url);
    control
        .set_faults(&Faults {
            latency_ms: args.latency_ms,
            ..Faults::default()
        })
        .await;
    let aws = LocalAws::new("bench").await;
    let mut config = PixlpayConfig::new(&url, Secret::new("sk_test_simulator")).expect("URL");
    config.requests_per_minute = args.rpm;
    let client = PixlpayClient::new(config).expect("client");
    let sync = FullSync {
        catalog: client.clone(),
        store: aws.product_store(),
        state: aws.sync_state(),
        events: aws.publisher(),
        config: FullSyncConfig::default(),
    };
    let pages = args.products.div_ceil(100).max(1);
    let floor = Duration::from_secs_f64(pages as f64 * 60.0 / f64::from(args.rpm));
    println!(
        "pixlpay-bench: {} products, {} rpm, {} ms latency per request; rate-limit floor {:.1} s ({pages} requests)",
        args.products,
        args.rpm,
        args.latency_ms,
        floor.as_secs_f64()
    );
    let mut rows = Vec::new();

    // Baseline: the same client walking the catalog, writing nothing.
    reset_peak_rss();
    let before = client.stats();
    let started = Instant::now();
    let mut walker = client.pages(100, FullSyncConfig::default().page_concurrency);
    let mut seen = 0;
    while let Some(page) = walker.next().await {
        seen += page.expect("page").products.len();
    }
    assert_eq!(seen as u64, args.products, "the walk saw every product");
    let stats = client.stats().since(&before);
    rows.push(Row {
        phase: "baseline: catalog walk, no writes".into(),
        wall: started.elapsed(),
        requests: stats.requests,
        rate_limited: stats.rate_limited,
        written: None,
        events: None,
        peak_mib: peak_rss_mib(),
    });

    let mut run_phase = async |phase: &str| {
        reset_peak_rss();
        let started = Instant::now();
        let options = RunOptions {
            trigger: "bench".into(),
            lock_owner: phase.into(),
            lock_expires_at_unix: OffsetDateTime::now_utc().unix_timestamp() + 3600,
            deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
            max_pages: None,
        };
        let run: RunRecord = match sync.run(&options).await.expect("sync runs") {
            RunOutcome::Completed { run } => *run,
            other => panic!("{other:?}"),
        };
        rows.push(Row {
            phase: phase.into(),
            wall: started.elapsed(),
            requests: run.counts.api_requests,
            rate_limited: run.counts.rate_limited,
            written: Some(run.counts.dynamodb_writes),
            events: Some(run.counts.events_published),
            peak_mib: peak_rss_mib(),
        });
    };
    run_phase("first sync (empty table)").await;
    run_phase("re-sync, nothing changed").await;
    let changes = ((args.products as f64) * args.changed).round() as u64;
    let step = (args.products / changes.max(1)).max(1);
    for i in 0..changes {
        control
            .update_product(1 + i * step, json!({"price": "1.01"}), true)
            .await;
    }
    run_phase(&format!("re-sync, {changes} changed ({:.0}%)", args.changed * 100.0)).await;

    let walk = rows[0].wall.as_secs_f64();
    println!();
    println!(
        "| {:<34} | {:>8} | {:>8} | {:>8} | {:>8} | {:>5} | {:>7} | {:>6} | {:>9} |",
        "phase", "wall s", "/ floor", "/ walk", "requests", "429s", "written", "events", "peak MiB"
    );
    println!(
        "|{:-<36}|{:->10}|{:->10}|{:->10}|{:->10}|{:->7}|{:->9}|{:->8}|{:->11}|",
        "", "", "", "", "", "", "", "", ""
    );
    for row in &rows {
        let wall = row.wall.as_secs_f64();
        let dash = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        println!(
            "| {:<34} | {:>8.1} | {:>8.3} | {:>8.3} | {:>8} | {:>5} | {:>7} | {:>6} | {:>9.1} |",
            row.phase,
            wall,
            wall / floor.as_secs_f64(),
            wall / walk,
            row.requests,
            row.rate_limited,
            dash(row.written),
            dash(row.events),
            row.peak_mib
        );
    }
    let mut sim_stats = control.stats().await;
    println!(
        "\nsimulator saw (requests by route and status): {}",
        sim_stats["routes"].take()
    );

    bench_webhook::handler_latency(args.webhook_requests).await;
    bench_webhook::end_to_end(&url, args.rpm, args.burst_products, args.burst_changes).await;
}
