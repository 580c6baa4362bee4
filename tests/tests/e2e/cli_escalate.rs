//! `flint run --escalate URL` against a second `flint serve` on 127.0.0.1: always, on low confidence (threshold 1
//! escalates, 0 never does), when the contemplating agents disagree; a remote that is not there or never answers
//! leaves the local answer standing within the timeout; an answer from the remote says so on the overlay.
//! x86_64 only (real weights, servers).
#![cfg(target_arch = "x86_64")]

use flint_tests::muse::muse_spark_with_processors;
use flint_tests::{fixtures, run_bin, serve, smollm2_q8};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The server's count of accepted requests (GET /metrics).
fn requests(url: &str) -> u64 {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("flint_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("flint_requests_total in /metrics")
}

fn run(model: &Path, args: &[&str]) -> (String, String) {
    let mut a = vec!["run", "-m", model.to_str().unwrap(), "--chat"];
    if !args.contains(&"-n") {
        a.extend(["-n", "16"]);
    }
    a.extend_from_slice(args);
    let o = run_bin("flint", &a);
    let (out, err) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "{args:?}: {err}");
    (out, err)
}

#[test]
fn escalates_when_asked_and_keeps_the_local_answer_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2_q8(dir.path());
    let remote = serve(&model, &[]);
    let url = remote.url.as_str();
    let q = ["-p", "Name the capital of France."];
    let (local, _) = run(&model, &q);
    assert!(local.contains("Paris"), "{local}");

    // Always: the remote answers (the same weights, greedy: the same words), and it was asked once.
    let before = requests(url);
    let (out, err) = run(
        &model,
        &[&q[..], &["--escalate", url, "--escalate-when", "always"]].concat(),
    );
    assert!(
        err.contains(&format!("the answer comes from {url}")),
        "{err}"
    );
    assert_eq!(out.trim(), local.trim());
    assert_eq!(requests(url), before + 1);

    // Low confidence: a threshold of 1 always escalates, 0 never does.
    let (_, err) = run(
        &model,
        &[&q[..], &["--escalate", url, "--escalate-threshold", "1"]].concat(),
    );
    assert!(
        err.contains("confidence ") && err.contains("the answer comes from"),
        "{err}"
    );
    assert_eq!(requests(url), before + 2);
    let (out, err) = run(
        &model,
        &[&q[..], &["--escalate", url, "--escalate-threshold", "0"]].concat(),
    );
    assert!(!err.contains("the answer comes from"), "{err}");
    assert_eq!(out.trim(), local.trim());
    assert_eq!(requests(url), before + 2);

    // Agents that disagree (warm sampling, long answers: no two alike) hand the question over.
    let (_, err) = run(
        &model,
        &[
            "-p",
            "Write a short poem.",
            "--agents",
            "3",
            "--temp",
            "1.5",
            "-n",
            "24",
            "--escalate",
            url,
            "--escalate-when",
            "agents-disagree",
        ],
    );
    assert!(err.contains("the remote (the agents disagreed)"), "{err}");
    assert_eq!(requests(url), before + 3);

    // Nobody listening: the local answer stands.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (out, err) = run(
        &model,
        &[&q[..], &["--escalate", &dead, "--escalate-when", "always"]].concat(),
    );
    assert!(err.contains("escalation failed"), "{err}");
    assert_eq!(out.trim(), local.trim());

    // A remote that accepts and never answers: given up on after the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let hold = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(2).filter_map(Result::ok).collect();
        std::thread::sleep(Duration::from_secs(8));
        drop(conns);
    });
    let t = Instant::now();
    let (out, err) = run(
        &model,
        &[
            &q[..],
            &[
                "--escalate",
                &silent_url,
                "--escalate-when",
                "always",
                "--escalate-timeout",
                "1",
            ],
        ]
        .concat(),
    );
    let took = t.elapsed();
    assert!(err.contains("escalation failed"), "{err}");
    assert_eq!(out.trim(), local.trim());
    assert!(took < Duration::from_secs(7), "took {took:?}");
    drop(hold);
}

#[test]
fn an_answer_from_the_remote_says_so_on_the_overlay() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = muse_spark_with_processors(tmp.path());
    let remote = serve(&model, &[]);
    let image = fixtures().join("processors/images/coffee.png");
    let draw = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "--image",
            image.to_str().unwrap(),
            "-p",
            "Where is the cup?",
            "--box-format",
            "qwen3-vl",
            "--overlay",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        run(&model, &a)
    };
    let (local, remote_png) = (tmp.path().join("local.png"), tmp.path().join("remote.png"));
    draw(&local, &[]);
    let (_, err) = draw(
        &remote_png,
        &["--escalate", &remote.url, "--escalate-when", "always"],
    );
    assert!(err.contains("the answer comes from"), "{err}");
    let (a, b) = (
        image::open(&local).unwrap().to_rgb8(),
        image::open(&remote_png).unwrap().to_rgb8(),
    );
    // The caption sits in the bottom-left corner: white tag, black text.
    let h = b.height();
    let corner = |img: &image::RgbImage| -> Vec<[u8; 3]> {
        (0..60)
            .flat_map(|x| (h - 12..h).map(move |y| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0)
            .collect()
    };
    let (ca, cb) = (corner(&a), corner(&b));
    assert_ne!(
        ca, cb,
        "the remote's overlay looks like the local one in the corner"
    );
    assert!(cb.iter().filter(|p| **p == [255, 255, 255]).count() > 200);
    assert!(cb.contains(&[0, 0, 0]));
}
