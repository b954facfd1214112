//! Command-line errors: the binary refuses to start, with a message on stderr.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::binary;

/// Runs the binary with `args` in a scratch directory (so relative paths never land in the
/// source tree); fails the test if it is still running after 30 s (a loaded machine).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!(
        "pushgateway-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(binary())
        .current_dir(&dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("{args:?}: the binary kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (status.code(), stderr)
}

#[test]
fn unknown_flag_exits_non_zero_with_a_message() {
    let (code, stderr) = run(&["--web.listen-address=127.0.0.1:0", "--no.such-flag"]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(stderr.contains("no.such-flag"), "stderr: {stderr:?}");
}

/// `--web.config.file` naming a file that does not exist stops the start with a message
/// naming the file (upstream refuses it the same way).
#[test]
fn missing_web_config_file_exits_non_zero() {
    let (code, stderr) = run(&[
        "--web.listen-address=127.0.0.1:0",
        "--web.config.file=web.yml",
    ]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(stderr.contains("web.yml"), "stderr: {stderr:?}");
}

#[test]
fn invalid_flag_values_exit_non_zero() {
    for args in [
        &["--web.listen-address=127.0.0.1:0", "--log.level=loud"][..],
        &[
            "--web.listen-address=127.0.0.1:0",
            "--persistence.interval=often",
        ][..],
        &[
            "--web.listen-address=127.0.0.1:0",
            "--push.max-body-bytes=-1",
        ][..],
    ] {
        let (code, stderr) = run(args);
        assert!(code.is_some_and(|c| c != 0), "{args:?}: exit code {code:?}");
        assert!(!stderr.trim().is_empty(), "{args:?}: no message on stderr");
    }
}

#[test]
fn invalid_listen_address_exits_non_zero() {
    let (code, stderr) = run(&["--web.listen-address=not an address"]);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(!stderr.trim().is_empty(), "no message on stderr");
}

/// Durations past Go's limit (about 292 years) are usage errors, not a panic (exit 101).
#[test]
fn overflowing_durations_are_usage_errors() {
    let (code, stderr) = run(&[
        "--web.listen-address=127.0.0.1:0",
        "--persistence.interval=99999999999999999999h",
    ]);
    assert_eq!(code, Some(64), "stderr: {stderr:?}");
    assert!(
        stderr.contains("persistence.interval") && stderr.contains("too long"),
        "stderr: {stderr:?}"
    );
    let dir = std::env::temp_dir().join(format!("pgw-cli-ttl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushgateway.toml");
    std::fs::write(&file, "[expiry]\ndefault_ttl = \"9999999999999999999s\"\n").unwrap();
    let arg = format!("--config.file={}", file.display());
    let (code, stderr) = run(&["--web.listen-address=127.0.0.1:0", &arg]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(64), "stderr: {stderr:?}");
    assert!(
        stderr.contains("line 2") && stderr.contains("too long"),
        "stderr: {stderr:?}"
    );
}
