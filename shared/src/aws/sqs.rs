//! The product work queue on SQS.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::ingest::{QueueError, WorkMessage, WorkQueue};
use crate::status::QueueDepth;

/// SQS's longest message delay.
const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone, Debug)]
pub struct SqsWorkQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsWorkQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl WorkQueue for SqsWorkQueue {
    async fn enqueue(&self, message: &WorkMessage, delay: Duration) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).expect("work messages always serialise");
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// How many messages a queue holds, as SQS approximates it (one GetQueueAttributes call).
pub async fn queue_depth(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<QueueDepth, QueueError> {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
    let attributes = output.attributes.unwrap_or_default();
    let count = |name: QueueAttributeName| -> Result<u64, QueueError> {
        match attributes.get(&name) {
            None => Ok(0),
            Some(raw) => raw
                .parse()
                .map_err(|_| QueueError(format!("{name} is not a count: {raw:?}"))),
        }
    };
    Ok(QueueDepth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages)?,
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed)?,
    })
}

/// Where refused external changes go: an SQS queue, each message `{"reason", "event"}` with the reason also as a
/// message attribute.
#[derive(Clone, Debug)]
pub struct SqsRejects {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRejects {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub async fn reject(&self, event: &serde_json::Value, reason: &str) -> Result<(), QueueError> {
        let body = serde_json::json!({"reason": reason, "event": event}).to_string();
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason.chars().take(1000).collect::<String>())
            .build()
            .map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("reason", attribute)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
