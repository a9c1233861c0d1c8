//! A running `certwipe serve` for tests: raw HTTP requests, and what a real
//! headless browser (Debian's chromium) shows, with a screenshot kept in
//! target/screenshots/ to be looked at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::certwipe_command;

/// A running `certwipe serve`, stopped when dropped.
pub struct Page {
    child: Child,
    address: String,
}

impl Page {
    pub fn start(ledger: &str, allowed: &Path) -> Page {
        Self::start_with(ledger, allowed, &[])
    }

    pub fn start_with(ledger: &str, allowed: &Path, extra: &[&str]) -> Page {
        let mut child = certwipe_command()
            .args(["serve", "--listen", "127.0.0.1:0", "--ledger", ledger, "--allowed-signers"])
            .arg(allowed)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Page { child, address: address.to_string() }
    }

    /// A raw request; the status code and the whole response.
    pub fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The page's process id (for its threads and memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, target: &str) -> (u16, String) {
        self.raw(&format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    }

    /// What a browser shows: the DOM after rendering, and a screenshot.
    pub fn browse(&self, target: &str, screenshot: &str) -> Option<String> {
        let url = format!("http://{}{target}", self.address);
        // A profile of its own (tests browse in parallel), and a time limit so that
        // a browser that hangs fails the test instead of stalling CI.
        let profile = tempfile::tempdir().unwrap();
        let chromium = |args: &[&str]| {
            Command::new("timeout")
                .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu"])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .args(args)
                .arg(&url)
                .output()
        };
        let out = chromium(&["--dump-dom"]).expect("coreutils timeout");
        // `timeout` exits 127 when the command it runs is not found.
        if out.status.code() == Some(127) {
            assert!(std::env::var_os("CI").is_none(), "CI installs chromium");
            eprintln!("skipping the browser checks: chromium is not installed");
            return None;
        }
        let succeeded = |out: &std::process::Output| {
            assert!(out.status.success(), "chromium {url}: {}", String::from_utf8_lossy(&out.stderr));
        };
        succeeded(&out);
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let shot = format!("--screenshot={}", shots.join(screenshot).display());
        succeeded(&chromium(&[&shot, "--window-size=1200,1400"]).unwrap());
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
