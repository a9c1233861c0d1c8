//! The records office's page (`certwipe serve`): plain HTTP checks of routing
//! and refusals, and a real headless browser (Debian's chromium) for what a
//! person sees: search by every key, a medium's whole history, a tampered
//! certificate shown as failing, a stored `<script>` shown as text.
//! Screenshots land in target/screenshots/ to be looked at.

mod common;

use std::path::{Path, PathBuf};

use common::page::Page;
use common::postgres::{READ_ONLY_ROLE, Server};
use common::*;

/// An office whose ledger holds one medium with its whole life, and one whose
/// operator's name is markup.
fn office_with_history() -> (Office, PathBuf) {
    let office = Office::new();
    let cert = write_history(&office);
    (office, cert)
}

/// Fills `office`'s ledger as `office_with_history` describes; the markup
/// operator's certificate.
fn write_history(office: &Office) -> PathBuf {
    whole_life(office);
    office.ok(&["register", "USB-9", "--type", "usb-flash", "--classification", "内部", "--serial", "SER-9"]);
    office.certificate(
        "usb9",
        &[
            "--asset",
            "USB-9",
            "--classification",
            "internal",
            "--destination",
            "destruction",
            "--operator",
            "<script>alert('x')</script>",
        ],
        true,
    )
}

fn certificate_id(cert: &Path) -> String {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(cert).unwrap()).unwrap();
    json["certificate_id"].as_str().unwrap().to_string()
}

#[test]
fn requests_the_page_must_refuse() {
    let (office, cert) = office_with_history();
    let page = Page::start(&office.ledger, &office.allowed);
    let id = certificate_id(&cert);
    assert_eq!(page.get("/").0, 200);
    assert_eq!(page.get(&format!("/c/{id}")).0, 200);
    for target in [
        "/c/00000000-0000-4000-8000-000000000000",
        "/c/not-an-id",
        "/m/NO-SUCH-MEDIUM",
        "/c/../../etc/passwd",
        "/c/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        &format!("/c/{id}/files/..%2F..%2Fetc%2Fpasswd"),
        &format!("/c/{id}/files/ledger.sqlite"),
        "/etc/passwd",
    ] {
        let (status, body) = page.get(target);
        assert_eq!(status, 404, "{target}");
        assert!(!body.contains("root:"), "{target} leaked a file");
    }
    let (status, _) = page.get(&format!("/search?q={}", "x".repeat(400)));
    assert_eq!(status, 400);
    let (status, _) = page.get(&format!("/search?q={}", "x".repeat(2000)));
    assert_eq!(status, 414);
    let (status, _) =
        page.raw("POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 405);
    // Every response forbids scripts, and downloads are the exact bytes.
    let (_, response) = page.get("/");
    assert!(response.contains("Content-Security-Policy: default-src 'none'"), "{response}");
    let (status, download) = page.get(&format!("/c/{id}/files/{id}.json"));
    assert_eq!(status, 200);
    assert!(download.ends_with(&String::from_utf8(std::fs::read(&cert).unwrap()).unwrap()));
}

#[test]
fn the_page_in_a_real_browser() {
    let (office, cert) = office_with_history();
    let page = Page::start(&office.ledger, &office.allowed);
    browse_everything(&page, &cert, "");
}

/// The same pages on PostgreSQL, read by a role that may only read.
#[test]
fn the_page_in_a_real_browser_on_postgresql() {
    let Some(server) = Server::start() else { return };
    let office = Office::with_ledger(Some(server.database("office")));
    let cert = write_history(&office);
    server.sql("office", READ_ONLY_ROLE);
    let page = Page::start(&server.url("records", "office"), &office.allowed);
    browse_everything(&page, &cert, "pg-");
}

/// Search by every key, a medium's history in order, a stored `<script>` as
/// text; screenshots are named with `shot_prefix`.
fn browse_everything(page: &Page, cert: &Path, shot_prefix: &str) {
    let id = certificate_id(cert);
    let shot = |name: &str| format!("{shot_prefix}{name}");
    let Some(home) = page.browse("/?lang=both", &shot("home.png")) else { return };
    assert!(home.contains("Ledger search"), "{home}");

    // Search by ledger number, serial, certificate id, and a QR code's text.
    let sha = certwipe::stream::sha256_hex(&std::fs::read(cert).unwrap());
    for (query, expected, name) in [
        ("MJ-2026-0042", "MJ-2026-0042", "by-number.png"),
        ("SER-9", "USB-9", "by-serial.png"),
        (id.as_str(), "VALID", "by-id.png"),
        (&format!("certwipe:{id}:sha256:{sha}"), "Matches the printed certificate", "by-qr.png"),
    ] {
        let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let dom = page.browse(&format!("/search?q={encoded}&lang=en"), &shot(name)).unwrap();
        assert!(dom.contains(expected), "{query}: {dom}");
    }

    // A medium's whole history, in order, with the ledger's state.
    let dom = page.browse("/m/MJ-2026-0042?lang=both", &shot("medium.png")).unwrap();
    let history = &dom[dom.find("History").expect("a history section")..];
    let order: Vec<usize> = ["registered", "certificate", "countersignature", "approval", "destruction"]
        .iter()
        .map(|kind| {
            history.find(&format!("{kind}</td>")).unwrap_or_else(|| panic!("{kind} missing: {history}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "history out of order: {order:?}");
    assert!(dom.contains("Ledger intact"), "{dom}");

    // A stored <script> is shown as text and never becomes an element.
    let dom = page.browse(&format!("/c/{id}?lang=en"), &shot("script-as-text.png")).unwrap();
    assert!(dom.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{dom}");
    assert!(!dom.contains("<script"), "{dom}");
}

#[test]
fn a_tampered_certificate_is_shown_failing() {
    let (office, cert) = office_with_history();
    let id = certificate_id(&cert);
    // Someone with write access to the database edits the stored certificate.
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute(
        "UPDATE certificates SET json = replace(json, 'erased', 'ERASED') WHERE certificate_id = ?1",
        [&id],
    )
    .unwrap();
    drop(db);
    let page = Page::start(&office.ledger, &office.allowed);
    let (status, body) = page.get(&format!("/c/{id}?lang=en"));
    assert_eq!(status, 200);
    assert!(body.contains("NOT VALID"), "{body}");
    if let Some(dom) = page.browse(&format!("/c/{id}?lang=en"), "tampered.png") {
        assert!(dom.contains("NOT VALID") && !dom.contains(">VALID:"), "{dom}");
    }
    // The medium's page says the ledger does not verify.
    let (_, body) = page.get("/m/USB-9?lang=en");
    assert!(body.contains("does NOT verify"), "{body}");
}
