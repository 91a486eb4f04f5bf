//! Walks the catalog page by page: page 1 alone (to learn `last_page`), then up to `concurrency` pages in flight,
//! yielded in page order. The client's pacer still spaces the requests, so concurrency only hides latency.
//! Each fetch runs as its own task, so the next pages keep downloading while the caller writes the current one;
//! dropping the walker aborts whatever is still in flight.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::task::JoinHandle;

use super::client::ProductPage;
use super::error::PixlpayError;
use crate::sync::Catalog;

pub struct PageWalker<C> {
    catalog: C,
    per_page: u32,
    concurrency: usize,
    next_page: u32,
    last_page: Option<u32>,
    in_flight: FuturesOrdered<Fetch>,
    failed: bool,
}

impl<C: Catalog> PageWalker<C> {
    /// Starts at `first_page` (1 for a new scan; later to resume a checkpointed one).
    pub fn new(catalog: C, per_page: u32, concurrency: usize, first_page: u32) -> Self {
        Self {
            catalog,
            per_page,
            concurrency: concurrency.max(1),
            next_page: first_page.max(1),
            last_page: None,
            in_flight: FuturesOrdered::new(),
            failed: false,
        }
    }

    /// The next page in order; `None` after the last page, or after an error was yielded.
    pub async fn next(&mut self) -> Option<Result<ProductPage, PixlpayError>> {
        if self.failed {
            return None;
        }
        self.fill();
        let result = self.in_flight.next().await?;
        match &result {
            // The largest last_page seen: a catalog that grows during the scan is followed to its new end, and one
            // that shrinks costs at most a few empty pages.
            Ok(page) => self.last_page = Some(self.last_page.unwrap_or(0).max(page.last_page)),
            Err(_) => {
                self.failed = true;
                self.in_flight = FuturesOrdered::new();
            }
        }
        if !self.failed {
            self.fill();
        }
        Some(result)
    }

    fn fill(&mut self) {
        let limit = match self.last_page {
            None if self.in_flight.is_empty() => self.next_page,
            None => return,
            Some(last) => last,
        };
        while self.in_flight.len() < self.concurrency && self.next_page <= limit {
            let (catalog, page, per_page) = (self.catalog.clone(), self.next_page, self.per_page);
            self.in_flight
                .push_back(Fetch(tokio::spawn(async move { catalog.page(page, per_page).await })));
            self.next_page += 1;
        }
    }
}

/// A spawned page fetch that is aborted when dropped (a paused or failed walk leaves nothing running).
struct Fetch(JoinHandle<Result<ProductPage, PixlpayError>>);

impl Future for Fetch {
    type Output = Result<ProductPage, PixlpayError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            // Only a panic inside the client gets here (aborts happen on drop, when nobody polls).
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        })
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
