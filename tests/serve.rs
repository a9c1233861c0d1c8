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
    assert!(response.to_lowercase().contains("content-security-policy: default-src 'none'"), "{response}");
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
    // And another one so that it still reads as a certificate, signed by nobody.
    let other: String = db
        .query_row("SELECT certificate_id FROM certificates WHERE number = 'MJ-2026-0042'", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "UPDATE certificates SET json = replace(json, 'Li Wei', 'Li Wex') WHERE number = 'MJ-2026-0042'",
        [],
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
    // A certificate that no longer reads as one is not printed at all...
    let (status, body) = page.get(&format!("/c/{id}/files/{id}.pdf"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("NOT VALID"), "{body}");
    // ...and one that does is printed NOT VALID where the result would be (issue 15).
    let Ok(pdftotext) = std::process::Command::new("pdftotext").arg("-v").output() else { return };
    assert!(pdftotext.status.success());
    let pdf = office.dir.path().join("served.pdf");
    let mut stream = std::net::TcpStream::connect(page.address()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!("GET /c/{other}/files/{other}.pdf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut response = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut response).unwrap();
    let body = response.windows(4).position(|w| w == b"\r\n\r\n").map(|at| &response[at + 4..]).unwrap();
    std::fs::write(&pdf, body).unwrap();
    let text = std::process::Command::new("pdftotext").arg(&pdf).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("NOT VALID") && !text.contains("digital signature valid"), "{text}");
}

/// A number from `/proc/PID/status` (`Threads`, `VmRSS` in kB).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `GET /` answered within `within`, while others misbehave.
fn answered_within(page: &Page, within: std::time::Duration) -> bool {
    let started = std::time::Instant::now();
    let (status, _) = page.get("/");
    status == 200 && started.elapsed() < within
}

/// Issue 15: one client pipelining requests without reading stalled the page
/// for everyone; a request line without CRLF was buffered without limit
/// (400 MB sent, 433 MB resident); 3,000 idle connections made 2,887 threads.
#[test]
fn no_client_can_stall_the_page_or_make_it_grow() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;
    let (office, cert) = office_with_history();
    let page = Page::start(&office.ledger, &office.allowed);
    let id = certificate_id(&cert);
    // One client asks for the PDF two hundred times in one go and reads nothing.
    let mut greedy = TcpStream::connect(page.address()).unwrap();
    let request = format!("GET /c/{id}/files/{id}.pdf HTTP/1.1\r\nHost: x\r\n\r\n");
    greedy.write_all(request.repeat(200).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(answered_within(&page, Duration::from_secs(5)), "a pipelining client stalled the page");
    // One sends a request line without end: what the page holds for it stays small.
    let rss_before = proc_status(page.pid(), "VmRSS");
    let mut endless = TcpStream::connect(page.address()).unwrap();
    let chunk = vec![b'A'; 1 << 20];
    let mut sent = 0usize;
    endless.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    while sent < 200 << 20 && endless.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    assert!(sent < 200 << 20, "the page took {sent} bytes of one request line");
    let grown = proc_status(page.pid(), "VmRSS").saturating_sub(rss_before);
    assert!(grown < 16 << 10, "resident memory grew by {grown} kB for an endless request line");
    assert!(answered_within(&page, Duration::from_secs(5)));
    // Three thousand idle connections (as many as this process may open).
    let mut idle = Vec::new();
    for _ in 0..3000 {
        match TcpStream::connect(page.address()) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() > 500, "could open only {} connections", idle.len());
    std::thread::sleep(Duration::from_secs(1));
    let threads = proc_status(page.pid(), "Threads");
    assert!(threads <= 16, "{threads} threads for {} idle connections", idle.len());
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    assert!(answered_within(&page, Duration::from_secs(5)), "idle connections stalled the page");
    // The greedy client still gets its answers once it reads.
    greedy.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut first = vec![0u8; 15];
    greedy.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");
}

/// The trial after issue 15: one client holding every connection the page
/// allows (and reopening those closed) kept everyone else out. At the limit,
/// a new connection takes the place of the one idle the longest.
#[test]
fn clients_holding_every_connection_cannot_keep_another_out() {
    use std::time::Duration;
    let (office, _) = office_with_history();
    let page = Page::start_with(&office.ledger, &office.allowed, &["--max-connections", "32"]);
    let mut held: Vec<std::net::TcpStream> =
        (0..100).filter_map(|_| std::net::TcpStream::connect(page.address()).ok()).collect();
    assert!(held.len() >= 64, "{} connections", held.len());
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert!(answered_within(&page, Duration::from_secs(5)), "connections held idle kept a client out");
        held.extend((0..32).filter_map(|_| std::net::TcpStream::connect(page.address()).ok()));
    }
    assert!(proc_status(page.pid(), "Threads") <= 16);
}

/// The trial after issue 15: a certificate the ledger refused, inserted into
/// its database by hand, was shown VALID (with an ERASED PDF) by the page.
#[test]
fn a_certificate_put_into_the_database_by_hand_is_not_valid_on_the_page() {
    let office = Office::new();
    office.ok(&["register", "MJ-11", "--type", "hdd", "--classification", "secret"]);
    let cert = office.certificate("by-hand", &["--asset", "MJ-11", "--classification", "secret"], false);
    let bytes = std::fs::read(&cert).unwrap();
    let signature = std::fs::read_to_string(certwipe::cert::files::signature_path(&cert)).unwrap();
    let id = certificate_id(&cert);
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute(
        "INSERT INTO certificates VALUES (?1, 'MJ-11', ?2, ?3, ?4)",
        rusqlite::params![id, certwipe::stream::sha256_hex(&bytes), bytes, signature],
    )
    .unwrap();
    drop(db);
    let page = Page::start(&office.ledger, &office.allowed);
    let (status, body) = page.get(&format!("/c/{id}?lang=en"));
    assert_eq!(status, 200);
    assert!(
        body.contains("NOT VALID") && body.contains("no signed ledger entry records this certificate"),
        "{body}"
    );
}

/// The number in "Ledger intact, every signature valid (N entries)".
fn entries_shown(page: &Page, path: &str) -> usize {
    let (status, body) = page.get(path);
    assert_eq!(status, 200, "{body}");
    let tail = body.split("every signature valid (").nth(1).unwrap_or_else(|| panic!("{body}"));
    tail.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_page_reuses_a_verification_only_while_the_ledger_has_not_grown() {
    let (office, _) = office_with_history();
    let page = Page::start(&office.ledger, &office.allowed);
    let before = entries_shown(&page, "/m/USB-9?lang=en");
    assert_eq!(entries_shown(&page, "/m/USB-9?lang=en"), before);
    office.ok(&[
        "register",
        "USB-10",
        "--type",
        "usb-flash",
        "--classification",
        "内部",
        "--serial",
        "SER-10",
    ]);
    assert_eq!(entries_shown(&page, "/m/USB-9?lang=en"), before + 1, "a new entry shows at once");
    // A medium's row edited by hand is caught on its own page at once, from
    // its signed history, whatever the whole-ledger verification kept says.
    let db = rusqlite::Connection::open(&office.ledger).unwrap();
    db.execute("UPDATE media SET classification = 'public' WHERE number = 'USB-9'", []).unwrap();
    drop(db);
    let (_, body) = page.get("/m/USB-9?lang=en");
    assert!(body.contains("NOT what the ledger's signed history records"), "{body}");
}
