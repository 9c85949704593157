//! Request parsing for `vkgraph serve`: typed field access on the JSON body with errors
//! that name the field, OpenAI-style error responses, and the checks a generation request
//! passes before it reaches the engine (prompt and `max_tokens` within a slot's context).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::engine::GenParams;
use super::template::{ChatTemplate, Message};
use crate::sample::SamplerParams;
use crate::tokenizer::Tokenizer;

/// An error answered as `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &str) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
            kind: "invalid_request_error",
        }
    }

    /// A 400.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
        }
    }

    pub fn typed(mut self, kind: &'static str) -> ApiError {
        self.kind = kind;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind,
                                    "code": self.status.as_u16()}});
        (self.status, Json(body)).into_response()
    }
}

type R<T> = std::result::Result<T, ApiError>;

/// The body as a JSON object.
pub fn json_body(body: &[u8]) -> R<Value> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad("the body must be a JSON object"));
    }
    Ok(v)
}

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().expect("json_body checked")
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    obj(v).get(k).filter(|x| !x.is_null())
}

pub fn req_str(v: &Value, k: &str) -> R<String> {
    match field(v, k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad(format!("`{k}` must be a string"))),
        None => Err(ApiError::bad(format!("`{k}` is required"))),
    }
}

pub fn opt_bool(v: &Value, k: &str) -> R<Option<bool>> {
    match field(v, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad(format!("`{k}` must be a boolean"))),
    }
}

fn opt_f32(v: &Value, k: &str) -> R<Option<f32>> {
    match field(v, k) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(f as f32))
            .ok_or_else(|| ApiError::bad(format!("`{k}` must be a number"))),
    }
}

fn opt_uint(v: &Value, k: &str) -> R<Option<u64>> {
    match field(v, k) {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("`{k}` must be a non-negative integer"))),
    }
}

/// `k` as a list of token ids below `n_vocab`.
pub fn token_list(v: &Value, k: &str, n_vocab: usize) -> R<Vec<u32>> {
    let Some(Value::Array(a)) = field(v, k) else {
        return Err(ApiError::bad(format!(
            "`{k}` must be an array of token ids"
        )));
    };
    a.iter()
        .map(|x| {
            x.as_u64()
                .filter(|&t| (t as usize) < n_vocab)
                .map(|t| t as u32)
                .ok_or_else(|| {
                    ApiError::bad(format!("`{k}`: {x} is not a token id below {n_vocab}"))
                })
        })
        .collect()
}

/// `messages`: a non-empty array of `{role, content}` (content a string, or parts with
/// `text`).
pub fn messages(v: &Value) -> R<Vec<Message>> {
    let Some(Value::Array(a)) = field(v, "messages") else {
        return Err(ApiError::bad("`messages` must be an array"));
    };
    if a.is_empty() {
        return Err(ApiError::bad("`messages` must not be empty"));
    }
    a.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad(format!("`messages[{i}].role` must be a string")))?;
            let content = match m.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(""),
                Some(_) => {
                    return Err(ApiError::bad(format!(
                        "`messages[{i}].content` must be a string or an array of parts"
                    )))
                }
            };
            let text = |k: &str| -> R<Option<String>> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(ApiError::bad(format!(
                        "`messages[{i}].{k}` must be a string"
                    ))),
                }
            };
            let tool_calls = match m.get("tool_calls") {
                None | Some(Value::Null) => None,
                Some(Value::Array(calls)) => {
                    // Templates read `function.arguments` as a mapping (Llama 3.2 applies
                    // tojson, Qwen3 tests for a string): OpenAI's JSON string is decoded.
                    let calls = calls
                        .iter()
                        .map(|c| {
                            let mut c = c.clone();
                            if let Some(Value::String(a)) = c.pointer("/function/arguments") {
                                if let Ok(parsed) = serde_json::from_str::<Value>(a) {
                                    c["function"]["arguments"] = parsed;
                                }
                            }
                            c
                        })
                        .collect();
                    Some(Value::Array(calls))
                }
                Some(_) => {
                    return Err(ApiError::bad(format!(
                        "`messages[{i}].tool_calls` must be an array"
                    )))
                }
            };
            Ok(Message {
                role: role.to_string(),
                content,
                tool_calls,
                tool_call_id: text("tool_call_id")?,
                name: text("name")?,
            })
        })
        .collect()
}

/// A checked generation request.
pub struct GenRequest {
    pub params: GenParams,
    pub stream: bool,
    /// Chat with `tools` (and `tool_choice` not `none`): the answer is scanned for
    /// `<tool_call>` blocks, returned as `tool_calls`.
    pub tools: bool,
}

/// The request's `tools` for the template (`None` without, or with `tool_choice: none`);
/// each must be `{"type": "function", "function": {"name": …}}`.
fn tools(v: &Value) -> R<Option<Value>> {
    let choice = match field(v, "tool_choice") {
        None | Some(Value::Null) => "auto",
        Some(Value::String(s)) if s == "auto" || s == "none" => s.as_str(),
        Some(_) => {
            return Err(ApiError::bad(
                "`tool_choice` must be \"auto\" or \"none\" (forcing a tool is not supported)",
            ))
        }
    };
    let Some(t) = field(v, "tools") else {
        return Ok(None);
    };
    let Value::Array(list) = t else {
        return Err(ApiError::bad("`tools` must be an array"));
    };
    for (i, tool) in list.iter().enumerate() {
        let ok = tool.get("type").and_then(Value::as_str) == Some("function")
            && tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .is_some();
        if !ok {
            return Err(ApiError::bad(format!(
                "`tools[{i}]` must be {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
            )));
        }
    }
    Ok((choice == "auto" && !list.is_empty()).then(|| t.clone()))
}

impl GenRequest {
    /// Parses a chat or text completion request against a slot of `capacity` cells;
    /// with `context_shift` (`serve --context-shift`) `max_tokens` may exceed what the
    /// context leaves after the prompt.
    pub fn parse(
        v: &Value,
        chat: bool,
        tok: &Tokenizer,
        tmpl: &ChatTemplate,
        capacity: usize,
        context_shift: bool,
    ) -> R<GenRequest> {
        let tool_defs = if chat { tools(v)? } else { None };
        let prompt = if chat {
            let text = tmpl
                .render_with_tools(&messages(v)?, true, tool_defs.as_ref())
                .map_err(|e| ApiError::bad(e.to_string()))?;
            super::template::encode_chat(tok, &text).map_err(|e| ApiError::bad(e.to_string()))?
        } else {
            match field(v, "prompt") {
                Some(Value::String(s)) => encode(tok, s, tok.add_bos())?,
                Some(Value::Array(_)) => token_list(v, "prompt", tok.n_vocab())?,
                _ => {
                    return Err(ApiError::bad(
                        "`prompt` must be a string or an array of token ids",
                    ))
                }
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::bad("the prompt encodes to no tokens"));
        }
        if prompt.len() >= capacity {
            return Err(ApiError::bad(format!(
                "the prompt ({} tokens) does not fit a slot's context of {capacity} tokens \
                 (raise -c or lower -np)",
                prompt.len()
            )));
        }
        let room = capacity - prompt.len();
        let asked = match opt_uint(v, "max_tokens")? {
            Some(n) => Some(n),
            None => opt_uint(v, "max_completion_tokens")?.or(opt_uint(v, "n_predict")?),
        };
        let max_tokens = match asked {
            Some(n) if n as usize > room && !context_shift => {
                return Err(ApiError::bad(format!(
                    "`max_tokens` {n} exceeds what the context leaves after the prompt ({room})"
                )))
            }
            Some(0) => return Err(ApiError::bad("`max_tokens` must be at least 1")),
            Some(n) => n as usize,
            None => room,
        };
        let d = SamplerParams::default();
        let sampler = SamplerParams {
            temp: opt_f32(v, "temperature")?.unwrap_or(d.temp),
            top_k: opt_uint(v, "top_k")?.map_or(d.top_k, |k| k as usize),
            top_p: opt_f32(v, "top_p")?.unwrap_or(d.top_p),
            min_p: opt_f32(v, "min_p")?.unwrap_or(d.min_p),
            repeat_penalty: opt_f32(v, "repeat_penalty")?.unwrap_or(d.repeat_penalty),
            seed: opt_uint(v, "seed")?.unwrap_or(d.seed),
            ..d
        };
        let stop = match field(v, "stop") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::bad("`stop` must be a string or strings"))
                })
                .collect::<R<_>>()?,
            Some(_) => return Err(ApiError::bad("`stop` must be a string or strings")),
        };
        // chat: logprobs (bool) + top_logprobs; completions: logprobs (int); llama.cpp: n_probs.
        let n_probs = if chat {
            match opt_bool(v, "logprobs")? {
                Some(true) => opt_uint(v, "top_logprobs")?.unwrap_or(1).max(1) as usize,
                _ => 0,
            }
        } else {
            match field(v, "logprobs") {
                None => 0,
                Some(x) => x
                    .as_u64()
                    .ok_or_else(|| ApiError::bad("`logprobs` must be a non-negative integer"))?
                    as usize,
            }
        };
        let n_probs = opt_uint(v, "n_probs")?
            .map_or(n_probs, |n| n as usize)
            .min(20);
        Ok(GenRequest {
            params: GenParams {
                prompt,
                max_tokens,
                sampler,
                stop,
                n_probs,
                ignore_eos: opt_bool(v, "ignore_eos")?.unwrap_or(false),
                n_keep: opt_uint(v, "n_keep")?.map_or(0, |n| n as usize),
            },
            stream: opt_bool(v, "stream")?.unwrap_or(false),
            tools: tool_defs.is_some(),
        })
    }
}

fn encode(tok: &Tokenizer, text: &str, add_bos: bool) -> R<Vec<u32>> {
    let mut ids = tok
        .encode(text, false, true)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    if let (true, Some(b)) = (add_bos, tok.bos()) {
        ids.insert(0, b);
    }
    Ok(ids)
}

/// OpenAI's `usage` object.
pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

/// One token's entry of OpenAI's `logprobs.content`.
pub fn logprob_entry(tok: &Tokenizer, id: u32, logprob: f64, top: &[(u32, f64)]) -> Value {
    let piece = |t: u32| String::from_utf8_lossy(&tok.token_to_piece(t, false)).into_owned();
    let bytes = |t: u32| tok.token_to_piece(t, false);
    json!({
        "id": id,
        "token": piece(id),
        "logprob": logprob,
        "bytes": bytes(id),
        "top_logprobs": top.iter().map(|&(t, lp)| json!({
            "id": t, "token": piece(t), "logprob": lp, "bytes": bytes(t)
        })).collect::<Vec<_>>(),
    })
}
