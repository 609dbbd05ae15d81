//! One tower layer for the server's wrappers around each call (the request
//! timeout, the gRPC metrics): a wrapper sees the request's path and the
//! call's future, and returns the future the caller awaits. tower's own
//! combinators see either the request or the response, not both.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future a wrapped call returns.
pub type CallFuture<R, E> = Pin<Box<dyn Future<Output = Result<http::Response<R>, E>> + Send>>;

/// What a [`CallLayer`] does around each call.
pub trait AroundCall: Clone {
    /// Wraps the call of the method at `path`, whose answer `call` gives.
    fn around<F, R, E>(&self, path: &str, call: F) -> CallFuture<R, E>
    where
        F: Future<Output = Result<http::Response<R>, E>> + Send + 'static,
        R: Default + Send + 'static,
        E: Send + 'static;
}

/// A tower layer running `A` around every call.
#[derive(Debug, Clone, Copy)]
pub struct CallLayer<A> {
    around: A,
}

impl<A> CallLayer<A> {
    /// Runs `around` around every call.
    pub fn new(around: A) -> Self {
        Self { around }
    }
}

impl<S, A: Clone> tower::Layer<S> for CallLayer<A> {
    type Service = CallService<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService { inner, around: self.around.clone() }
    }
}

/// The service of [`CallLayer`].
#[derive(Debug, Clone)]
pub struct CallService<S, A> {
    inner: S,
    around: A,
}

impl<S, A, B, R> tower::Service<http::Request<B>> for CallService<S, A>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
    A: AroundCall,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CallFuture<R, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // A `Uri` clone shares its bytes: the path outlives the request.
        let uri = request.uri().clone();
        let call = self.inner.call(request);
        self.around.around(uri.path(), call)
    }
}
