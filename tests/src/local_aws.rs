//! Real local AWS for tests, benchmarks and the demo: MiniStack (or moto) at `AWS_ENDPOINT_URL`, with tables, a bus,
//! and an SQS queue behind a rule on the bus, all uniquely named so tests run in parallel.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use pixlpay_sync::aws::{
    DynamoProductStore, DynamoSyncState, EventBridgePublisher, create_products_table, create_state_table,
};
use pixlpay_sync::sync::ProductItem;
use serde_json::{Value, json};

/// The SDK config for a local endpoint with test credentials. Panics, saying how to start the services, when
/// `endpoint` is not given and `AWS_ENDPOINT_URL` is not set: these tests never talk to real AWS.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let endpoint = endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .expect(
            "AWS_ENDPOINT_URL is not set: start MiniStack with `./dev services up` and export \
         AWS_ENDPOINT_URL=http://127.0.0.1:4566 (./dev test does both)",
        );
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-test");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// A name no other test uses: `<prefix>-<millis>-<random>`.
pub fn unique_name(prefix: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!("{prefix}-{millis}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// One receive of up to 10 messages on `queue_url`, without waiting; deletes them and returns their bodies.
async fn take_batch(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive");
    let mut bodies = Vec::new();
    for message in output.messages.unwrap_or_default() {
        bodies.push(message.body.clone().unwrap_or_default());
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(message.receipt_handle.unwrap_or_default())
            .send()
            .await
            .expect("delete");
    }
    bodies
}

/// Receives (and deletes) every message now visible on `queue_url`: their bodies.
pub async fn take_messages(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let batch = take_batch(sqs, queue_url).await;
        if batch.is_empty() {
            return bodies;
        }
        bodies.extend(batch);
    }
}

pub struct LocalAws {
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub products_table: String,
    pub state_table: String,
    pub bus: String,
    /// Receives every event published on `bus` with source `event_source`.
    pub queue_url: String,
    pub event_source: String,
}

impl LocalAws {
    /// Creates the two tables, a bus, and a queue subscribed to the bus through a rule.
    pub async fn new(prefix: &str) -> Self {
        let config = sdk_config(None).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let eventbridge = aws_sdk_eventbridge::Client::new(&config);
        let products_table = unique_name(&format!("{prefix}-products"));
        let state_table = unique_name(&format!("{prefix}-state"));
        create_products_table(&dynamodb, &products_table)
            .await
            .expect("create products table");
        create_state_table(&dynamodb, &state_table)
            .await
            .expect("create state table");
        let bus = unique_name(&format!("{prefix}-bus"));
        eventbridge
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("create bus");
        let event_source = "pixlpay-sync".to_owned();
        let mut this = Self {
            config,
            dynamodb,
            sqs,
            eventbridge,
            products_table,
            state_table,
            bus,
            queue_url: String::new(),
            event_source,
        };
        this.queue_url = this
            .queue_behind_rule(prefix, json!({"source": [this.event_source]}))
            .await;
        this
    }

    /// A new queue that receives, as EventBridge delivers them, the events on the bus matching `pattern`.
    pub async fn queue_behind_rule(&self, prefix: &str, pattern: Value) -> String {
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(unique_name(prefix))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        let rule = unique_name(&format!("{prefix}-rule"));
        self.eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&self.bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put rule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(self.queue_arn(&queue_url).await)
            .build()
            .unwrap();
        self.eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(&self.bus)
            .targets(target)
            .send()
            .await
            .expect("put targets");
        queue_url
    }

    /// A product work queue with its DLQ: messages become visible again `visibility_timeout_secs` after a receive
    /// and move to the DLQ on receive number `max_receive + 1`. Returns (queue URL, DLQ URL).
    pub async fn work_queue(&self, visibility_timeout_secs: u32, max_receive: u32) -> (String, String) {
        let dlq_url = self
            .sqs
            .create_queue()
            .queue_name(unique_name("work-dlq"))
            .send()
            .await
            .expect("create DLQ")
            .queue_url
            .unwrap();
        let dlq_arn = self.queue_arn(&dlq_url).await;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()});
        let url = self
            .sqs
            .create_queue()
            .queue_name(unique_name("work"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .expect("create work queue")
            .queue_url
            .unwrap();
        (url, dlq_url)
    }

    async fn queue_arn(&self, url: &str) -> String {
        self.sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn")
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone()
    }

    /// Receives (and deletes) every message now visible on `queue_url`: their bodies.
    pub async fn take_messages(&self, queue_url: &str) -> Vec<String> {
        take_messages(&self.sqs, queue_url).await
    }

    /// Every item of the sync-state table, as JSON.
    pub async fn state_items(&self) -> Vec<Value> {
        let output = self
            .dynamodb
            .scan()
            .table_name(&self.state_table)
            .send()
            .await
            .expect("scan state");
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item::<HashMap<String, AttributeValue>, Value>(item).expect("item"))
            .collect()
    }

    pub fn product_store(&self) -> DynamoProductStore {
        DynamoProductStore::new(self.dynamodb.clone(), &self.products_table, &self.state_table)
    }

    pub fn sync_state(&self) -> DynamoSyncState {
        DynamoSyncState::new(self.dynamodb.clone(), &self.state_table)
    }

    pub fn publisher(&self) -> EventBridgePublisher {
        EventBridgePublisher::new(self.eventbridge.clone(), &self.bus, &self.event_source)
    }

    /// Receives (and deletes) events from the queue until `expected` arrived, then waits `settle` more to catch any
    /// extra one; gives up after `timeout`. Returns the EventBridge envelopes.
    pub async fn drain_events(&self, expected: usize, settle: Duration, timeout: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let started = Instant::now();
        let mut reached_at: Option<Instant> = None;
        loop {
            if reached_at.is_some_and(|t| t.elapsed() >= settle) || started.elapsed() >= timeout {
                return events;
            }
            let bodies = take_batch(&self.sqs, &self.queue_url).await;
            if bodies.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for body in bodies {
                events.push(serde_json::from_str(&body).expect("event is JSON"));
            }
            if events.len() >= expected && reached_at.is_none() {
                reached_at = Some(Instant::now());
            }
        }
    }

    /// Every item of the Products table, by id.
    pub async fn products(&self) -> HashMap<u64, ProductItem> {
        let mut items = HashMap::new();
        let mut pages = self
            .dynamodb
            .scan()
            .table_name(&self.products_table)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.expect("scan").items.unwrap_or_default() {
                let item: ProductItem =
                    serde_dynamo::from_item::<HashMap<String, AttributeValue>, _>(item).expect("a product item");
                items.insert(item.product_id, item);
            }
        }
        items
    }
}
