//! `vkgraph serve` end to end over HTTP (a std TcpStream client, no HTTP crate): greedy
//! completions equal the library's greedy tokens; streamed text equals the collected text
//! and ends with `data: [DONE]`; five requests at once on 2 slots (a queue, continuous
//! batching) give what each gives alone, on the CPU and on Vulkan under validation; a
//! prompt extending an earlier one reuses its cached cells and gives the same tokens; bad
//! requests get OpenAI-style 4xx errors and the server keeps serving; the real `openai`
//! Python client works against it.

mod models;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::sched::session::{Session, SessionOptions};

struct Server {
    child: Child,
    addr: String,
    log: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_with(&["-np", "2", "-c", "128"], extra)
    }

    fn start_with(shape: &[&str], extra: &[&str]) -> Server {
        let model = models::tiny("llama", "q4_0");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
            .args(["serve", "-m", model.to_str().unwrap(), "--port", "0"])
            .args(shape)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vkgraph serve");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("server did not start:\n{}", seen.join("\n")));
            if let Some(a) = line.strip_prefix("listening on http://") {
                break a.to_string();
            }
            seen.push(line);
        };
        Server {
            child,
            addr,
            log: std::sync::Mutex::new(rx),
        }
    }

    /// (status, body) of one request; chunked bodies (SSE) are de-chunked.
    fn request(&self, method: &str, path: &str, body: &str, headers: &[&str]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").expect("HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (st, b) = self.request("POST", path, &body.to_string(), &[]);
        (
            st,
            serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}")),
        )
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let log = self.log.lock().unwrap();
        log.try_iter().collect()
    }
}

impl Drop for Server {
    /// A failing test must not leave its server running (it would hold the test
    /// harness's output pipe open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Token ids of a completion (from its logprobs entries).
fn ids(v: &Value) -> Vec<u32> {
    v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no logprobs: {v}"))
        .iter()
        .map(|e| e["id"].as_u64().unwrap() as u32)
        .collect()
}

/// The library's greedy continuation of `prompt` (CPU reference), `n` tokens.
fn greedy(prompt: &[u32], n: usize) -> Vec<u32> {
    let m = models::tiny_model("llama", "q4_0");
    let mut s = Session::new(
        m.clone(),
        vec![Box::new(CpuBackend::new(Arc::clone(&m)))],
        SessionOptions {
            n_ctx: 64,
            ..Default::default()
        },
    );
    let mut l = s.forward(prompt, false).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let t = models::argmax(&l);
        out.push(t);
        l = s.forward(&[t], false).unwrap();
    }
    out
}

fn completion(prompt: &[u32], stream: bool) -> Value {
    json!({"prompt": prompt, "max_tokens": 6, "temperature": 0, "logprobs": 1, "stream": stream})
}

/// Greedy ids alone and side by side with another request (both orders of arrival).
fn parallel_matches_alone(srv: &Server, label: &str) {
    // Five prompts of different lengths for two slots: three wait in the queue, and
    // prompts, prefill chunks and decode steps of different requests share passes.
    let prompts: Vec<Vec<u32>> = (0..5)
        .map(|i| models::prompt(5 + 3 * i)[i..].to_vec())
        .collect();
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| ids(&srv.post("/v1/completions", completion(p, false)).1))
        .collect();
    std::thread::scope(|sc| {
        let h: Vec<_> = prompts
            .iter()
            .map(|p| sc.spawn(move || ids(&srv.post("/v1/completions", completion(p, false)).1)))
            .collect();
        for (i, h) in h.into_iter().enumerate() {
            assert_eq!(
                h.join().unwrap(),
                alone[i],
                "{label}: request {i} beside four others"
            );
        }
    });
}

#[test]
fn completions_match_greedy_stream_and_parallel_on_cpu() {
    let srv = Server::start(&["--cpu"]);
    let p = models::prompt(5);
    let (st, v) = srv.post("/v1/completions", completion(&p, false));
    assert_eq!(st, 200, "{v}");
    let got = ids(&v);
    let want = greedy(&p, got.len());
    assert_eq!(got, want, "server greedy vs library greedy");
    assert_eq!(v["usage"]["prompt_tokens"], json!(5));
    assert_eq!(v["usage"]["completion_tokens"], json!(got.len()));
    // Streamed: the same text in `data:` chunks, then [DONE].
    let (st, body) = srv.request(
        "POST",
        "/v1/completions",
        &completion(&p, true).to_string(),
        &[],
    );
    assert_eq!(st, 200);
    let datas: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.last(), Some(&"[DONE]"), "{body}");
    let text: String = datas[..datas.len() - 1]
        .iter()
        .map(|d| {
            let c: Value = serde_json::from_str(d).unwrap();
            c["choices"][0]["text"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(
        text,
        v["choices"][0]["text"].as_str().unwrap(),
        "stream vs collected"
    );
    parallel_matches_alone(&srv, "CPU");
    // Prompt reuse: a prompt that extends an earlier one starts from that one's cached
    // cells and still gives the library's greedy tokens.
    let longer: Vec<u32> = p.iter().copied().chain([3, 4, 5]).collect();
    let (_, v2) = srv.post("/v1/completions", completion(&longer, false));
    let got2 = ids(&v2);
    assert_eq!(got2, greedy(&longer, got2.len()), "after prompt reuse");
    let (_, m) = srv.request("GET", "/metrics", "", &[]);
    let reused: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("vkgraph_prompt_tokens_cached_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(reused >= 5, "no prompt tokens reused:\n{m}");
    // Chat: ChatML for a model without a template; the rendered prompt is served too.
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let (st, t) = srv.post("/apply-template", json!({ "messages": msgs }));
    assert_eq!(st, 200);
    assert!(
        t["prompt"]
            .as_str()
            .unwrap()
            .ends_with("<|im_start|>assistant\n"),
        "{t}"
    );
    let (st, c) = srv.post(
        "/v1/chat/completions",
        json!({"messages": msgs, "max_tokens": 3, "temperature": 0}),
    );
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["object"], json!("chat.completion"));
    assert_eq!(c["choices"][0]["message"]["role"], json!("assistant"));
    // Tokenize / detokenize round trip; models; metrics.
    let (_, tk) = srv.post("/tokenize", json!({"content": "hello world"}));
    let (_, dt) = srv.post("/detokenize", json!({"tokens": tk["tokens"]}));
    assert!(
        dt["content"].as_str().unwrap().contains("hello world"),
        "{dt}"
    );
    let (st, _) = srv.request("GET", "/v1/models", "", &[]);
    assert_eq!(st, 200);
    let (_, metrics) = srv.request("GET", "/metrics", "", &[]);
    assert!(metrics.contains("vkgraph_requests_total"), "{metrics}");
    srv.stop();
}

/// `serve --context-shift`: a request may ask for more tokens than its slot holds; a full
/// slot drops half of what follows `n_keep` and goes on, giving the tokens of the library
/// session doing the same shifts. Without the flag such a request is a 400.
#[test]
fn context_shift_lets_a_request_outgrow_its_slot() {
    let (n_ctx, keep, n) = (16usize, 2usize, 40usize);
    let p = models::prompt(5);
    let body = json!({"prompt": p, "max_tokens": n, "temperature": 0, "logprobs": 1,
                      "ignore_eos": true, "n_keep": keep});
    let srv = Server::start_with(&["-np", "1", "-c", "16"], &["--cpu"]);
    let (st, v) = srv.post("/v1/completions", body.clone());
    assert_eq!(st, 400, "{v}");
    drop(srv);
    let srv = Server::start_with(&["-np", "1", "-c", "16"], &["--cpu", "--context-shift"]);
    let (st, v) = srv.post("/v1/completions", body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], json!(n), "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], json!("length"), "{v}");
    // The library, shifting as the engine does: before feeding a token to a full cache.
    let m = models::tiny_model("llama", "q4_0");
    let mut s = Session::new(
        m.clone(),
        vec![Box::new(CpuBackend::new(Arc::clone(&m)))],
        SessionOptions {
            n_ctx,
            ..Default::default()
        },
    );
    let mut l = s.forward(&p, false).unwrap();
    let mut want = Vec::new();
    let mut shifts = 0;
    while want.len() < n {
        let t = models::argmax(&l);
        want.push(t);
        if want.len() == n {
            break;
        }
        let len = s.n_past();
        if len >= n_ctx {
            s.shift_seq(0, keep, ((len - keep) / 2).max(1)).unwrap();
            shifts += 1;
        }
        l = s.forward(&[t], false).unwrap();
    }
    assert!(shifts >= 2, "{shifts} shifts");
    assert_eq!(ids(&v), want, "server vs library with context shifts");
    let (_, metrics) = srv.request("GET", "/metrics", "", &[]);
    assert!(
        metrics.contains(&format!("vkgraph_context_shifts_total {shifts}\n")),
        "{metrics}"
    );
}

#[test]
fn bad_requests_are_4xx_and_the_server_keeps_serving() {
    let srv = Server::start(&["--cpu", "--api-key", "sekrit"]);
    let auth = ["Authorization: Bearer sekrit"];
    let cases: Vec<(&str, String, u16)> = vec![
        ("/v1/completions", "{\"prompt\":".into(), 400),
        ("/v1/completions", "[1,2]".into(), 400),
        (
            "/v1/completions",
            json!({"prompt": "hi", "max_tokens": "x"}).to_string(),
            400,
        ),
        ("/v1/completions", json!({"prompt": 7}).to_string(), 400),
        (
            "/v1/completions",
            json!({"prompt": [1, 999_999]}).to_string(),
            400,
        ),
        (
            "/v1/completions",
            json!({"prompt": vec![1; 80]}).to_string(),
            400,
        ),
        (
            "/v1/completions",
            json!({"prompt": "hi", "max_tokens": 100_000}).to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": []}).to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"content": "x"}]}).to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "tools": {"a": 1}}).to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}],
                   "tools": [{"type": "function", "function": {}}]})
            .to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required",
                   "tools": [{"type": "function", "function": {"name": "f"}}]})
            .to_string(),
            400,
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "assistant", "content": "", "tool_calls": 3}]})
                .to_string(),
            400,
        ),
        ("/v1/nothing", "{}".into(), 404),
    ];
    for (path, body, want) in cases {
        let (st, b) = srv.request("POST", path, &body, &auth);
        assert_eq!(st, want, "{path} {body}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}"));
        assert!(v["error"]["message"].is_string(), "{b}");
        assert_eq!(v["error"]["code"], json!(want), "{b}");
    }
    // Wrong or missing key.
    let ok = completion(&models::prompt(3), false).to_string();
    for h in [&["Authorization: Bearer nope"][..], &[][..]] {
        let (st, b) = srv.request("POST", "/v1/completions", &ok, h);
        assert_eq!(st, 401, "{b}");
    }
    // Still serving; a request with tools (and a tool round trip) is accepted.
    let (st, b) = srv.request("POST", "/v1/completions", &ok, &auth);
    assert_eq!(st, 200, "{b}");
    // (Short: a slot holds 64 tokens and the tiny vocabulary is nearly byte-level.)
    let with_tools = json!({"messages": [
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "w", "arguments": "{\"c\": 1}"}}]}],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {}}}],
        "max_tokens": 2, "temperature": 0});
    let (st, b) = srv.request(
        "POST",
        "/v1/chat/completions",
        &with_tools.to_string(),
        &auth,
    );
    assert_eq!(st, 200, "{b}");
    srv.stop();
}

#[test]
fn parallel_requests_on_vulkan_match_alone_under_validation() {
    let srv = Server::start(&["--device", "0", "--validate"]);
    parallel_matches_alone(&srv, "Vulkan");
    let log = srv.stop();
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| {
            l.contains("VALIDATION")
                || l.contains("validation requested but")
                || l.contains("enable synchronization validation")
        })
        .collect();
    assert!(bad.is_empty(), "validation messages:\n{bad:?}");
}

/// The real `openai` Python client (scripts/setup-debian.sh installs it): chat streamed
/// and not, four concurrent completions equal to their solo results, typed errors for a
/// wrong key, a too-long prompt and a too-large `max_tokens` (tests/openai_client.py).
#[test]
fn the_openai_python_client_works_against_the_server() {
    let srv = Server::start_with(&["-np", "4", "-c", "512"], &["--cpu", "--api-key", "k"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([srv.addr.as_str(), "k"])
        .output()
        .expect("python3");
    let log = srv.stop();
    assert!(
        out.status.success(),
        "openai client checks failed (is the `openai` package installed? scripts/setup-debian.sh):\n{}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log.join("\n")
    );
}
