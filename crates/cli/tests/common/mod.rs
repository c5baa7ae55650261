//! What the binary's tests share: running `cloudpf`, a server child process, raw HTTP.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn cloudpf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloudpf"))
        .args(args)
        .output()
        .unwrap()
}

/// A plain HTTP/1.1 request with `Connection: close`; returns (status, body). The path and
/// body go out exactly as given (no normalisation), as a hostile client would send them.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body and close: not an error here.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A plain HTTP/1.1 GET with an API key; returns (status, body).
pub fn get(addr: &str, path: &str, key: &str) -> (u16, String) {
    request(addr, "GET", path, &[("X-API-Key", key)], b"")
}

/// `cloudpf serve` on a free loopback port, killed when dropped. Its log (stderr) is
/// kept, for tests that read what the server wrote.
pub struct Server {
    pub child: Child,
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(dir: &Path) -> Self {
        Self::start_with_env(dir, &[])
    }

    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        let args = [
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ];
        Self::spawn(&args, env)
    }

    /// `cloudpf <args>` for a command that ends up serving (`serve`, `demo --serve`):
    /// returns once it names its address.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudpf"))
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server names its address on stderr once it listens.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            let found = line
                .strip_prefix("cloudpf search API on http://")
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned());
            log.lock().unwrap().push(line);
            if let Some(addr) = found {
                break addr;
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, addr, log }
    }

    /// Stops the server with SIGTERM (a graceful shutdown); returns how it exited and
    /// everything it logged, once its stderr has closed.
    pub fn stop(mut self) -> (Option<std::process::ExitStatus>, Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().ok();
        // The reader thread ends at end of file; wait for it to have drained.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.log) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stdout of a `cloudpf` run that must succeed (its stderr in the failure message).
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "cloudpf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a `cloudpf` run that must fail.
pub fn failed(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "cloudpf should have failed");
    String::from_utf8(out.stderr.clone()).unwrap()
}
