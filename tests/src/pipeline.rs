//! Local stand-ins for what AWS puts in front of the webhook and worker functions, so tests, the benchmark and the
//! demo drive the functions' own entry points over real services:
//!
//! - [`serve_webhook`]: an HTTP server that turns each request into the `lambda_http::Request` API Gateway would
//!   hand the webhook function, and answers with the function's response;
//! - [`SqsPoller`]: Lambda's SQS event source mapping: long-poll the queue, gather a batch (up to 10 messages or a
//!   batching window), invoke the worker handler, delete what succeeded, leave reported failures to reappear after
//!   the visibility timeout (and reach the DLQ after the redrive policy's receive count).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use pixlpay_sync::handlers::product_worker;
use pixlpay_sync::handlers::webhook::WebhookHandler;
use pixlpay_sync::ingest::{DeliveryLog, WorkQueue};
use pixlpay_sync::sync::{AuditLog, Catalog, EventPublisher, HealthLog, ProductStore, ProductWorker};

/// The path the HTTP API routes to the webhook function.
pub const WEBHOOK_PATH: &str = "/webhooks/pixlpay";

/// A free loopback port for the webhook endpoint, and its URL: bound first, so the URL can be registered with
/// Pixlpay (which answers with the secret) before the handler exists.
pub async fn bind_webhook() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap());
    (listener, url)
}

/// Serves `handler` on `listener` until the process ends.
pub fn serve_webhook<D, Q>(listener: tokio::net::TcpListener, handler: Arc<WebhookHandler<D, Q>>)
where
    D: DeliveryLog + HealthLog + 'static,
    Q: WorkQueue + 'static,
{
    let app = axum::Router::new().fallback(forward::<D, Q>).with_state(handler);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

async fn forward<D: DeliveryLog + HealthLog, Q: WorkQueue>(
    State(handler): State<Arc<WebhookHandler<D, Q>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if uri.path() != WEBHOOK_PATH {
        return (StatusCode::NOT_FOUND, "no route").into_response();
    }
    let mut request = lambda_http::Request::new(lambda_http::Body::Binary(body.to_vec()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let response = handler.handle_http(request).await;
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.to_vec()).into_response()
}

/// Lambda's SQS trigger, run locally.
///
/// It runs on a thread of its own with its own runtime: the worker's futures (async fns in traits over generic ports)
/// cannot be proven `Send` for `tokio::spawn`, and a separate thread needs no such proof.
pub struct SqsPoller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
pub struct PollerSettings {
    /// `MaximumBatchingWindowInSeconds`: wait this long for a batch to fill before invoking.
    pub batching_window: Duration,
    pub batch_size: i32,
    /// The invocation timeout the handler is told about.
    pub timeout: Duration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self {
            batching_window: Duration::from_millis(500),
            batch_size: 10,
            timeout: Duration::from_secs(30),
        }
    }
}

impl SqsPoller {
    pub fn start<C, S, E, Q, A>(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        worker: Arc<ProductWorker<C, S, E, Q, A>>,
        settings: PollerSettings,
    ) -> Self
    where
        C: Catalog,
        S: ProductStore + 'static,
        E: EventPublisher + 'static,
        Q: WorkQueue + 'static,
        A: AuditLog + HealthLog + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("poller runtime");
            runtime.block_on(async move {
                while !stop_flag.load(Ordering::Relaxed) {
                    let records = receive_batch(&sqs, &queue_url, settings).await;
                    if records.is_empty() {
                        continue;
                    }
                    invoke(&sqs, &queue_url, worker.as_ref(), records, settings.timeout).await;
                }
            });
        });
        Self { stop, thread }
    }

    /// Stops after the batch in hand.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join().expect("poller thread"))
            .await
            .expect("join");
    }
}

/// Receives up to `batch_size` messages, waiting at most the batching window once the first one arrived.
pub async fn receive_batch(sqs: &aws_sdk_sqs::Client, queue_url: &str, settings: PollerSettings) -> Vec<SqsMessage> {
    let mut records = Vec::new();
    let started = Instant::now();
    loop {
        let wanted = settings.batch_size - records.len() as i32;
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(wanted.min(10))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(if records.is_empty() { 1 } else { 0 })
            .send()
            .await;
        let messages = match output {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Vec::new()
            }
        };
        for message in messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            if let Some(attributes) = &message.attributes {
                for (name, value) in attributes {
                    record.attributes.insert(name.as_str().to_owned(), value.clone());
                }
            }
            records.push(record);
        }
        if records.is_empty()
            || records.len() as i32 >= settings.batch_size
            || started.elapsed() >= settings.batching_window
        {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Invokes the worker handler with `records` and deletes every message it did not report as failed. Returns the
/// ids reported as failed.
pub async fn invoke<C, S, E, Q, A>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    worker: &ProductWorker<C, S, E, Q, A>,
    records: Vec<SqsMessage>,
    timeout: Duration,
) -> Vec<String>
where
    C: Catalog,
    S: ProductStore,
    E: EventPublisher,
    Q: WorkQueue,
    A: AuditLog + HealthLog,
{
    let mut event = SqsEvent::default();
    event.records = records;
    let response = product_worker::handle(worker, &event, SystemTime::now() + timeout).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for record in &event.records {
        if failed.iter().any(|id| Some(id) == record.message_id.as_ref()) {
            continue;
        }
        if let Some(handle) = &record.receipt_handle {
            let deleted = sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await;
            if let Err(e) = deleted {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed");
            }
        }
    }
    failed
}
