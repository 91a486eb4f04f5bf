//! The product work queue on SQS.

use std::time::Duration;

use crate::ingest::{QueueError, WorkMessage, WorkQueue};

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
