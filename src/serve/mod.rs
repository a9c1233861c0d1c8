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
use std::time::Duration;

use thiserror::Error;

use crate::cert::pdf::Lang;
use crate::cert::sign::AllowedSigners;
use crate::ledger::{Ledger, LedgerError};

/// Longer request targets are refused (414): nothing the page offers needs one.
pub const MAX_TARGET: usize = 1024;
/// Longer search queries are refused (400).
pub const MAX_QUERY: usize = 300;

/// What the page serves from.
pub struct Site {
    pub(crate) ledger: Ledger,
    pub(crate) allowed: AllowedSigners,
    /// Base of the page as printed in QR codes (`verify_url`), for the PDFs it renders.
    pub(crate) verify_url: Option<String>,
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
        Site { ledger, allowed, verify_url }
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

/// Serves until `stop` is set; `ready` hears the address actually bound.
pub fn serve(
    listen: &str,
    site: &mut Site,
    stop: &AtomicBool,
    ready: &dyn Fn(SocketAddr),
) -> Result<(), ServeError> {
    let server = tiny_http::Server::http(listen)
        .map_err(|e| ServeError::Listen { listen: listen.to_string(), why: e.to_string() })?;
    if let Some(address) = server.server_addr().to_ip() {
        ready(address);
    }
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(250)) else { continue };
        let head = *request.method() == tiny_http::Method::Head;
        let response = site.respond(request.method().as_str(), request.url());
        let _ = request.respond(to_http(response, head));
    }
    Ok(())
}

fn to_http(response: Response, head: bool) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = |name: &str, value: &str| tiny_http::Header::from_bytes(name, value).expect("ASCII header");
    let body = if head { Vec::new() } else { response.body };
    let mut http = tiny_http::Response::from_data(body).with_status_code(response.status);
    http.add_header(header("Content-Type", response.content_type));
    http.add_header(header("X-Content-Type-Options", "nosniff"));
    http.add_header(header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ));
    for (name, value) in response.headers {
        // Values are built from validated ids and numbers percent-encoded for URLs.
        if let Ok(h) = tiny_http::Header::from_bytes(name, value.as_bytes()) {
            http.add_header(h);
        }
    }
    http
}
