//! Counts what kpulse asks of the API server: a layer in the kube client's stack sees every
//! request (watches, lists, node-proxy scrapes, pod logs) and every answer byte as it is read,
//! and a sampler reports the increments to the app every second.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc::UnboundedSender;

use super::Update;
use crate::model::api_cost::{ApiCost, RequestKind};
use crate::model::time::now_unix;

/// Running totals, shared by the client's layer and the sampler.
#[derive(Debug, Default)]
pub struct ApiTraffic {
    requests: [AtomicU64; 5],
    bytes: [AtomicU64; 5],
}

impl ApiTraffic {
    pub fn totals(&self) -> ApiCost {
        let mut c = ApiCost::default();
        for i in 0..c.requests.len() {
            c.requests[i] = self.requests[i].load(Ordering::Relaxed);
            c.bytes[i] = self.bytes[i].load(Ordering::Relaxed);
        }
        c
    }

    pub fn count_request(&self, kind: RequestKind) {
        self.requests[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn count_bytes(&self, kind: RequestKind, n: usize) {
        self.bytes[kind.index()].fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The layer added to the kube client (`ClientBuilder::with_layer`).
#[derive(Clone)]
pub struct CountingLayer(pub Arc<ApiTraffic>);

impl<S> tower::Layer<S> for CountingLayer {
    type Service = Counting<S>;

    fn layer(&self, inner: S) -> Counting<S> {
        Counting { inner, traffic: self.0.clone() }
    }
}

pub struct Counting<S> {
    inner: S,
    traffic: Arc<ApiTraffic>,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Counting<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<CountedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let kind = RequestKind::of(request.uri().path(), request.uri().query());
        self.traffic.count_request(kind);
        let traffic = self.traffic.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|inner| CountedBody { inner, traffic, kind }))
        })
    }
}

/// An answer's body, counted frame by frame as it is read (a watch's bytes arrive for minutes).
/// The simulator counts what it serves with the same body, so both ends agree on what a byte is.
pub struct CountedBody<B> {
    inner: B,
    traffic: Arc<ApiTraffic>,
    kind: RequestKind,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, traffic: Arc<ApiTraffic>, kind: RequestKind) -> CountedBody<B> {
        CountedBody { inner, traffic, kind }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.traffic.count_bytes(self.kind, data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How often the app hears of the cost (a snapshot misses at most this much at its end).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Sends what was spent since the last report, every few seconds, until the app goes away.
pub async fn report(traffic: Arc<ApiTraffic>, tx: UnboundedSender<Update>) {
    let mut last = ApiCost::default();
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    loop {
        ticker.tick().await;
        let now = traffic.totals();
        let mut increment = ApiCost::default();
        for i in 0..now.requests.len() {
            increment.requests[i] = now.requests[i] - last.requests[i];
            increment.bytes[i] = now.bytes[i] - last.bytes[i];
        }
        last = now;
        if tx.send(Update::ApiCost { at: now_unix(), increment }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn every_request_and_answer_byte_is_counted_by_kind() {
        let traffic = Arc::new(ApiTraffic::default());
        let echo = tower::service_fn(|req: Request<()>| async move {
            let body = if req.uri().path().contains("/proxy/") { "x".repeat(1000) } else { "{}".into() };
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
        });
        let mut svc = CountingLayer(traffic.clone()).layer(echo);
        for uri in [
            "/api/v1/nodes/a/proxy/metrics/cadvisor",
            "/api/v1/nodes/b/proxy/metrics/cadvisor",
            "/api/v1/pods?limit=500",
        ] {
            let answer = svc.ready().await.unwrap().call(Request::get(uri).body(()).unwrap()).await.unwrap();
            answer.into_body().collect().await.unwrap();
        }
        let totals = traffic.totals();
        assert_eq!(totals.requests[RequestKind::NodeProxy.index()], 2);
        assert_eq!(totals.bytes[RequestKind::NodeProxy.index()], 2000);
        assert_eq!(totals.requests[RequestKind::List.index()], 1);
        assert_eq!(totals.bytes[RequestKind::List.index()], 2);
        assert_eq!(totals.total_requests(), 3);
    }
}
