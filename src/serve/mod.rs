//! `certwipe serve`: the records office's page. Read-only: it searches the
//! ledger by ledger number, serial, certificate id or a printed certificate's
//! QR text, shows a medium's whole history with the chain's state, and shows
//! a certificate with its signatures verified again against the allowed
//! signers on every view, with the exact files to download.
//!
//! [`Site::respond`] turns a request line into a response without any I/O but
//! the ledger's, so routing, escaping and refusals are tested directly; the
//! loop in [`serve`] only moves bytes.

pub mod html;
mod pages;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::cert::pdf::Lang;
use crate::cert::sign::AllowedSigners;
use crate::ledger::{Ledger, LedgerError, Verification};

/// Longer request targets are refused (414): nothing the page offers needs one.
pub const MAX_TARGET: usize = 1024;
/// Longer search queries are refused (400).
pub const MAX_QUERY: usize = 300;

/// How long the page reuses a whole-ledger verification while no entry has
/// been added: verifying re-checks every signature (a quarter of a second at
/// 1,500 entries), and a page view must not cost that. An entry appended shows
/// at once; a row edited by hand shows within this time.
pub const RECHECK_AFTER: Duration = Duration::from_secs(5);

/// What the page serves from.
pub struct Site {
    pub(crate) ledger: Ledger,
    pub(crate) allowed: AllowedSigners,
    /// Base of the page as printed in QR codes (`verify_url`), for the PDFs it renders.
    pub(crate) verify_url: Option<String>,
    checked: Option<Checked>,
}

/// The last whole-ledger verification, the newest entry it covered, and when.
struct Checked {
    at: std::time::Instant,
    newest: Option<(i64, String)>,
    verification: Verification,
}

/// One response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers: a download's file name, a redirect's location.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub(crate) fn html(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn download(content_type: &'static str, name: &str, body: Vec<u8>) -> Response {
        let disposition = format!("attachment; filename=\"{name}\"");
        Response { status: 200, content_type, body, headers: vec![("Content-Disposition", disposition)] }
    }

    pub(crate) fn redirect(location: String) -> Response {
        Response {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            headers: vec![("Location", location)],
        }
    }
}

/// The parts of a request the page reads.
pub(crate) struct Request {
    pub segments: Vec<String>,
    pub params: Vec<(String, String)>,
    pub lang: Lang,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn parse(target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments = path
        .split('/')
        .skip(1)
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let lang = match params.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.as_str()) {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => Lang::Both,
    };
    Request { segments, params, lang }
}

impl Site {
    pub fn new(ledger: Ledger, allowed: AllowedSigners, verify_url: Option<String>) -> Site {
        Site { ledger, allowed, verify_url, checked: None }
    }

    /// The whole ledger's verification, verified again when an entry was added
    /// or [`RECHECK_AFTER`] has passed.
    pub(crate) fn chain_state(&mut self) -> Result<&Verification, LedgerError> {
        let newest = self.ledger.newest()?;
        let checked = match self.checked.take() {
            Some(kept) if kept.newest == newest && kept.at.elapsed() < RECHECK_AFTER => kept,
            _ => Checked { at: std::time::Instant::now(), newest, verification: self.ledger.verify(None)? },
        };
        Ok(&self.checked.insert(checked).verification)
    }

    /// Answers one request. Never panics on what a client sends.
    pub fn respond(&mut self, method: &str, target: &str) -> Response {
        if target.len() > MAX_TARGET {
            return pages::error(Lang::Both, 414, "请求地址过长", "Request target too long");
        }
        if method != "GET" && method != "HEAD" {
            return pages::error(Lang::Both, 405, "只读页面", "This page is read-only");
        }
        let request = parse(target);
        let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
        let result = match segments.as_slice() {
            [""] => Ok(pages::home(&request)),
            ["search"] => pages::search(self, &request),
            ["m", number] => pages::medium(self, &request, number),
            ["c", file] => pages::certificate(self, &request, file),
            ["c", id, "files", name] => pages::file(self, id, name),
            _ => Ok(pages::not_found(request.lang)),
        };
        result.unwrap_or_else(|error| pages::ledger_error(request.lang, &error))
    }
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {listen}: {why}")]
    Listen { listen: String, why: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl crate::exit::ExitStatus for ServeError {
    fn exit_status(&self) -> u8 {
        match self {
            ServeError::Listen { .. } => crate::exit::USAGE,
            ServeError::Ledger(error) => error.exit_status(),
        }
    }
}

/// What any one client can take of the page. The third trial found one
/// client that pipelined requests without reading stall everyone, a request
/// line without CRLF buffered without limit (400 MB sent, 433 MB resident),
/// and 3,000 idle connections make 2,887 threads.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests answered at once, each with a ledger connection of its own;
    /// the rest wait for one, up to `queue_timeout`.
    pub workers: usize,
    /// Connections open at once; more are closed as they come.
    pub max_connections: usize,
    /// A request's head must arrive whole within this, and a kept-alive
    /// connection must start its next request within this.
    pub header_timeout: Duration,
    /// No connection lasts longer (a client reading a response slowly too).
    pub connection_lifetime: Duration,
    /// How long a request waits for a free worker before 503.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 4,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(120),
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// A request head (request line and headers) larger than this is refused:
/// nothing the page offers needs more.
const MAX_HEAD_BYTES: usize = 16 << 10;

/// Serves until `stop` is set; `ready` hears the address actually bound.
///
/// HTTP/1.1 by hyper on a tokio runtime of two threads: a connection is a
/// task, not a thread, so idle or slow clients cost memory, not threads, and
/// one slow or pipelining client blocks only its own connection. The page's
/// work (ledger reads, signature checks, PDFs) runs on at most
/// `limits.workers` blocking threads, one [`Site`] (ledger connection) each.
pub fn serve(
    listen: &str,
    sites: Vec<Site>,
    limits: Limits,
    stop: &AtomicBool,
    ready: &dyn Fn(SocketAddr),
) -> Result<(), ServeError> {
    let failed = |why: String| ServeError::Listen { listen: listen.to_string(), why };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(sites.len().max(1))
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| failed(e.to_string()))?;
        ready(listener.local_addr().map_err(|e| failed(e.to_string()))?);
        let pool = Arc::new(Pool::new(sites));
        let connections = Arc::new(Connections::new(limits.max_connections));
        while !stop.load(Ordering::SeqCst) {
            let accepted = tokio::time::timeout(Duration::from_millis(250), listener.accept()).await;
            let stream = match accepted {
                Err(_) => continue,
                Ok(Ok((stream, _))) => stream,
                // Out of descriptors, say: the page goes on for those it has.
                Ok(Err(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(admitted) = connections.admit() else { continue };
            tokio::spawn(connection(stream, pool.clone(), limits, connections.clone(), admitted));
        }
        Ok(())
    })
}

/// One client's connection, for at most `limits.connection_lifetime`, or
/// until it is closed to make room while idle.
async fn connection(
    stream: tokio::net::TcpStream,
    pool: Arc<Pool>,
    limits: Limits,
    connections: Arc<Connections>,
    (id, close): (u64, Arc<tokio::sync::Notify>),
) {
    let tracked = connections.clone();
    let service = hyper::service::service_fn(move |request| {
        let (pool, connections) = (pool.clone(), tracked.clone());
        async move {
            connections.busy(id, true);
            let response = answer(&pool, &request, limits).await;
            connections.busy(id, false);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        _ = tokio::time::timeout(limits.connection_lifetime, served) => {}
        () = close.notified() => {}
    }
    connections.gone(id);
}

/// The open connections. When they reach the limit, a new one takes the place
/// of the connection idle the longest (no request in progress), so that
/// clients holding connections open — thousands, reopened as they are closed
/// — cannot keep another client out; only when every one is answering a
/// request is the new one turned away.
struct Connections {
    max: usize,
    open: Mutex<std::collections::HashMap<u64, Open>>,
    next: std::sync::atomic::AtomicU64,
}

struct Open {
    busy: bool,
    since: std::time::Instant,
    close: Arc<tokio::sync::Notify>,
}

impl Connections {
    fn new(max: usize) -> Connections {
        Connections { max: max.max(1), open: Mutex::new(std::collections::HashMap::new()), next: 0.into() }
    }

    /// Room for one more: its id and what closes it; `None` when every open
    /// connection is busy.
    fn admit(&self) -> Option<(u64, Arc<tokio::sync::Notify>)> {
        let mut open = crate::engine::lock(&self.open);
        if open.len() >= self.max {
            let idlest =
                open.iter().filter(|(_, c)| !c.busy).min_by_key(|(_, c)| c.since).map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&idlest) {
                evicted.close.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(tokio::sync::Notify::new());
        open.insert(id, Open { busy: false, since: std::time::Instant::now(), close: close.clone() });
        Some((id, close))
    }

    fn busy(&self, id: u64, busy: bool) {
        if let Some(connection) = crate::engine::lock(&self.open).get_mut(&id) {
            connection.busy = busy;
            connection.since = std::time::Instant::now();
        }
    }

    fn gone(&self, id: u64) {
        crate::engine::lock(&self.open).remove(&id);
    }
}

/// The sites, one per worker: a request takes one, answers on a blocking
/// thread, and gives it back.
struct Pool {
    free: Mutex<Vec<Site>>,
    permits: tokio::sync::Semaphore,
}

impl Pool {
    fn new(sites: Vec<Site>) -> Pool {
        let permits = tokio::sync::Semaphore::new(sites.len());
        Pool { free: Mutex::new(sites), permits }
    }
}

async fn answer(
    pool: &Arc<Pool>,
    request: &hyper::Request<hyper::body::Incoming>,
    limits: Limits,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let head = request.method() == hyper::Method::HEAD;
    let method = request.method().as_str().to_string();
    let target =
        request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
    let busy =
        || pages::error(crate::cert::pdf::Lang::Both, 503, "繁忙，请稍后再试", "Busy: try again shortly");
    let response = match tokio::time::timeout(limits.queue_timeout, pool.permits.acquire()).await {
        Ok(Ok(_permit)) => {
            let site = crate::engine::lock(&pool.free).pop();
            match site {
                Some(mut site) => {
                    let answered = tokio::task::spawn_blocking(move || {
                        let response = site.respond(&method, &target);
                        (site, response)
                    })
                    .await;
                    match answered {
                        Ok((site, response)) => {
                            crate::engine::lock(&pool.free).push(site);
                            response
                        }
                        Err(_) => busy(),
                    }
                }
                None => busy(),
            }
        }
        _ => busy(),
    };
    to_http(response, head)
}

fn to_http(response: Response, head: bool) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let body = if head { Vec::new() } else { response.body };
    let mut http = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *http.status_mut() =
        hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = http.headers_mut();
    let fixed = [
        ("content-type", response.content_type),
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, hyper::header::HeaderValue::from_static(value));
    }
    for (name, value) in response.headers {
        // Values are built from validated ids and numbers percent-encoded for URLs.
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    http
}
