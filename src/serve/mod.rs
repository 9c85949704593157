//! `vkgraph serve`: an OpenAI-compatible HTTP server (axum + tokio) in front of the
//! decoding loop of [`engine`] — `/v1/chat/completions` and `/v1/completions` (streamed as
//! server-sent events or not), `/v1/models`, `/health`, `/tokenize`, `/detokenize`,
//! `/apply-template`, `/metrics` (Prometheus). Chat prompts come from the GGUF's Jinja
//! template ([`template`]).
//!
//! Invariants:
//! - Bad requests (malformed JSON, a field of the wrong type, a prompt or `max_tokens`
//!   beyond a slot's context, a wrong API key, an unknown route) get a 4xx with an
//!   OpenAI-style body `{"error": {"message", "type", "code"}}`; the server keeps serving.
//! - Requests are parsed and checked here; the engine only sees valid [`engine::Job`]s.

pub mod engine;
mod request;
pub mod template;

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::sched::session::Session;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use engine::{Event, Job, Metrics};
use request::{ApiError, GenRequest};
use template::ChatTemplate;

/// What the server needs besides the session.
pub struct ServeConfig {
    pub host: String,
    pub port: u16,
    pub api_key: Option<String>,
    /// Prompt tokens per step, shared by the slots in prefill.
    pub n_batch: usize,
    /// The id `/v1/models` reports (the file name).
    pub model_id: String,
    /// Requests that may wait for a slot; more get 503 with `Retry-After`.
    pub queue: usize,
    /// A full slot drops half of its tokens after the request's `n_keep` and goes on
    /// (llama-server's `--context-shift`); off, generation ends there ("length").
    pub context_shift: bool,
}

struct AppState {
    jobs: Mutex<mpsc::Sender<Job>>,
    tok: Arc<Tokenizer>,
    template: ChatTemplate,
    cfg: ServeConfig,
    /// Cells per sequence (a request's prompt + completion must fit).
    capacity: usize,
    n_seq: usize,
    metrics: Arc<Metrics>,
    next_id: std::sync::atomic::AtomicU64,
    /// Requests admitted and not yet answered (running or waiting).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// One admitted request; leaving (answered, failed or the client gone) frees its place.
struct Admission(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts the engine on its own thread (`make_session` runs there: backends stay on the
/// thread that uses them) and serves until Ctrl-C. `ready` is called with the bound address.
pub fn serve(
    make_session: impl FnOnce() -> Result<Session> + Send + 'static,
    tok: Arc<Tokenizer>,
    template: ChatTemplate,
    cfg: ServeConfig,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let (up_tx, up_rx) = mpsc::channel::<Result<(usize, usize)>>();
    let metrics = Arc::new(Metrics::default());
    let (m2, t2, n_batch, shift) = (metrics.clone(), tok.clone(), cfg.n_batch, cfg.context_shift);
    std::thread::Builder::new()
        .name("vkgraph-engine".into())
        .spawn(move || match make_session() {
            Ok(s) => {
                let _ = up_tx.send(Ok((s.kv().seq_capacity(), s.kv().n_seq())));
                engine::run(s, t2, jobs_rx, n_batch, shift, m2);
            }
            Err(e) => {
                let _ = up_tx.send(Err(e));
            }
        })
        .map_err(|e| Error::Usage(format!("cannot start the engine thread: {e}")))?;
    let (capacity, n_seq) = up_rx
        .recv()
        .map_err(|_| Error::Usage("the engine thread ended while loading".into()))??;
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let state = Arc::new(AppState {
        jobs: Mutex::new(jobs_tx),
        tok,
        template,
        cfg,
        capacity,
        n_seq,
        metrics,
        next_id: Default::default(),
        in_flight: Default::default(),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/apply-template", post(apply_template))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("{addr}: {e}")))?;
        ready(local);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Usage(format!("server: {e}")))
    })
}

fn authorized(st: &AppState, headers: &HeaderMap) -> std::result::Result<(), ApiError> {
    let Some(key) = &st.cfg.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key")
            .typed("authentication_error"))
    }
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn models(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    Json(json!({
        "object": "list",
        "data": [{"id": st.cfg.model_id, "object": "model", "created": now(), "owned_by": "vkgraph"}]
    }))
    .into_response()
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> String {
    let m = &st.metrics;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let secs = g(&m.forward_ns) as f64 / 1e9;
    let tokens = g(&m.prompt_tokens) + g(&m.generated_tokens);
    format!(
        "# TYPE vkgraph_requests_total counter\nvkgraph_requests_total {}\n\
         # TYPE vkgraph_prompt_tokens_total counter\nvkgraph_prompt_tokens_total {}\n\
         # TYPE vkgraph_prompt_tokens_cached_total counter\nvkgraph_prompt_tokens_cached_total {}\n\
         # TYPE vkgraph_tokens_predicted_total counter\nvkgraph_tokens_predicted_total {}\n\
         # TYPE vkgraph_context_shifts_total counter\nvkgraph_context_shifts_total {}\n\
         # TYPE vkgraph_requests_processing gauge\nvkgraph_requests_processing {}\n\
         # TYPE vkgraph_requests_deferred gauge\nvkgraph_requests_deferred {}\n\
         # TYPE vkgraph_slots_total gauge\nvkgraph_slots_total {}\n\
         # TYPE vkgraph_tokens_per_second gauge\nvkgraph_tokens_per_second {:.2}\n",
        g(&m.requests),
        g(&m.prompt_tokens),
        g(&m.cached_prompt_tokens),
        g(&m.generated_tokens),
        g(&m.context_shifts),
        g(&m.busy_slots),
        g(&m.queued),
        st.n_seq,
        if secs > 0.0 {
            tokens as f64 / secs
        } else {
            0.0
        }
    )
}

async fn tokenize(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let r = (|| {
        authorized(&st, &headers)?;
        let v = request::json_body(&body)?;
        let text = request::req_str(&v, "content")?;
        let special = request::opt_bool(&v, "add_special")?.unwrap_or(false);
        let ids = st
            .tok
            .encode(&text, special, true)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        Ok(Json(json!({"tokens": ids})).into_response())
    })();
    r.unwrap_or_else(ApiError::into_response)
}

async fn detokenize(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let r = (|| {
        authorized(&st, &headers)?;
        let v = request::json_body(&body)?;
        let ids = request::token_list(&v, "tokens", st.tok.n_vocab())?;
        Ok(Json(json!({"content": st.tok.decode(&ids)})).into_response())
    })();
    r.unwrap_or_else(ApiError::into_response)
}

async fn apply_template(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| {
        authorized(&st, &headers)?;
        let v = request::json_body(&body)?;
        let msgs = request::messages(&v)?;
        let prompt = st
            .template
            .render(&msgs, true)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        Ok(Json(json!({"prompt": prompt})).into_response())
    })();
    r.unwrap_or_else(ApiError::into_response)
}

async fn completions(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    generate(st, headers, body, false).await
}

async fn chat_completions(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(st, headers, body, true).await
}

/// Parses, checks and queues a request; streams or collects its answer.
async fn generate(st: Arc<AppState>, headers: HeaderMap, body: Bytes, chat: bool) -> Response {
    let parsed = (|| {
        authorized(&st, &headers)?;
        let v = request::json_body(&body)?;
        GenRequest::parse(
            &v,
            chat,
            &st.tok,
            &st.template,
            st.capacity,
            st.cfg.context_shift,
        )
    })();
    let req = match parsed {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // Admission: every slot busy and the queue full is a 503 the client may retry.
    let limit = st.n_seq + st.cfg.queue;
    if st.in_flight.fetch_add(1, Ordering::SeqCst) >= limit {
        st.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut r = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "all {} slots busy and {} requests waiting; retry",
                st.n_seq, st.cfg.queue
            ),
        )
        .typed("server_busy")
        .into_response();
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let admission = Admission(st.in_flight.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let n_probs = req.params.n_probs;
    let tools = chat && req.tools;
    let job = Job {
        params: req.params,
        events: tx,
    };
    let sent = st.jobs.lock().map(|j| j.send(job).is_ok()).unwrap_or(false);
    if !sent {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped")
            .typed("server_error")
            .into_response();
    }
    let n = st.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let model = st.cfg.model_id.clone();
    let tok = st.tok.clone();
    if req.stream {
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
        tokio::spawn(async move {
            let _admission = admission;
            let created = now();
            // One chunk: `delta` text (chat) or `text` (completions), then extras.
            let chunk = |text: Option<&str>, finish: Value, logprobs: Option<Value>| {
                let mut choice = if chat {
                    let delta = match text {
                        Some(t) => json!({"content": t}),
                        None => json!({}),
                    };
                    json!({"index": 0, "delta": delta, "finish_reason": finish})
                } else {
                    json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish})
                };
                if let Some(lp) = logprobs {
                    choice["logprobs"] = json!({"content": [lp]});
                }
                let object = if chat {
                    "chat.completion.chunk"
                } else {
                    "text_completion"
                };
                json!({"id": id, "object": object, "created": created, "model": model,
                       "choices": [choice]})
            };
            let data = |v: Value| SseEvent::default().data(v.to_string());
            if chat {
                let mut first = chunk(Some(""), Value::Null, None);
                first["choices"][0]["delta"]["role"] = json!("assistant");
                let _ = out_tx.send(data(first));
            }
            // With tools: the whole answer, and how much of it was streamed as text (text
            // from a `<tool_call>` on is held back and sent as tool_calls at the end).
            let (mut full, mut sent) = (String::new(), 0usize);
            while let Some(ev) = rx.recv().await {
                let msg = match ev {
                    Event::Token {
                        text,
                        id: t,
                        logprob,
                        top,
                    } => {
                        let lp = (n_probs > 0 && t != u32::MAX)
                            .then(|| request::logprob_entry(&tok, t, logprob, &top));
                        let text = if tools {
                            full.push_str(&text);
                            // Only the held-back tail can start a call: no rescan per token.
                            let upto = sent + template::streamable_len(&full[sent..]);
                            let s = full[sent.min(upto)..upto].to_string();
                            sent = sent.max(upto);
                            s
                        } else {
                            text
                        };
                        if text.is_empty() && lp.is_none() {
                            continue;
                        }
                        data(chunk(Some(&text), Value::Null, lp))
                    }
                    Event::Done {
                        finish_reason,
                        prompt_tokens,
                        completion_tokens,
                    } => {
                        let mut finish_reason = json!(finish_reason);
                        if tools {
                            let (_, calls) = template::parse_tool_calls(&full);
                            if calls.is_empty() {
                                // No call after all: what was held back is text.
                                if sent < full.len() {
                                    let _ = out_tx.send(data(chunk(
                                        Some(&full[sent..]),
                                        Value::Null,
                                        None,
                                    )));
                                }
                            } else {
                                let mut c = chunk(None, Value::Null, None);
                                c["choices"][0]["delta"] =
                                    json!({"tool_calls": tool_calls_json(&id, &calls, true)});
                                let _ = out_tx.send(data(c));
                                finish_reason = json!("tool_calls");
                            }
                        }
                        let mut last = chunk(None, finish_reason, None);
                        last["usage"] = request::usage(prompt_tokens, completion_tokens);
                        let _ = out_tx.send(data(last));
                        let _ = out_tx.send(SseEvent::default().data("[DONE]"));
                        break;
                    }
                    Event::Error(e) => {
                        let _ = out_tx.send(data(
                            json!({"error": {"message": e, "type": "server_error", "code": 500}}),
                        ));
                        break;
                    }
                };
                if out_tx.send(msg).is_err() {
                    break; // the client left; dropping rx cancels the job
                }
            }
        });
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::UnboundedReceiverStream::new(out_rx),
            Ok::<_, std::convert::Infallible>,
        );
        return Sse::new(stream).into_response();
    }
    // Not streamed: collect (the admission ends with this function).
    let _admission = admission;
    let (mut text, mut lps) = (String::new(), Vec::new());
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token {
                text: t,
                id: tid,
                logprob,
                top,
            } => {
                text.push_str(&t);
                if n_probs > 0 && tid != u32::MAX {
                    lps.push(request::logprob_entry(&tok, tid, logprob, &top));
                }
            }
            Event::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                let logprobs = if n_probs > 0 {
                    json!({"content": lps})
                } else {
                    Value::Null
                };
                let choice = if chat && tools {
                    let (content, calls) = template::parse_tool_calls(&text);
                    if calls.is_empty() {
                        json!({"index": 0, "message": {"role": "assistant", "content": text},
                               "finish_reason": finish_reason, "logprobs": logprobs})
                    } else {
                        json!({"index": 0,
                               "message": {"role": "assistant",
                                           "content": if content.is_empty() { Value::Null } else { json!(content) },
                                           "tool_calls": tool_calls_json(&id, &calls, false)},
                               "finish_reason": "tool_calls", "logprobs": logprobs})
                    }
                } else if chat {
                    json!({"index": 0, "message": {"role": "assistant", "content": text},
                           "finish_reason": finish_reason, "logprobs": logprobs})
                } else {
                    json!({"index": 0, "text": text, "finish_reason": finish_reason,
                           "logprobs": logprobs})
                };
                return Json(json!({
                    "id": id,
                    "object": if chat { "chat.completion" } else { "text_completion" },
                    "created": now(),
                    "model": model,
                    "choices": [choice],
                    "usage": request::usage(prompt_tokens, completion_tokens),
                }))
                .into_response();
            }
            Event::Error(e) => {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, &e)
                    .typed("server_error")
                    .into_response()
            }
        }
    }
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the engine dropped the request",
    )
    .typed("server_error")
    .into_response()
}

/// OpenAI's `tool_calls` for parsed calls (`index` per entry when streamed).
fn tool_calls_json(id: &str, calls: &[(String, String)], indexed: bool) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                let mut c = json!({"id": format!("call_{id}_{i}"), "type": "function",
                                   "function": {"name": name, "arguments": args}});
                if indexed {
                    c["index"] = json!(i);
                }
                c
            })
            .collect(),
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
