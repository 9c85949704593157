//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja as
//! transformers renders it (trim_blocks, lstrip_blocks) — `messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `raise_exception`, `strftime_now`, `tojson`, and Python string methods
//! (minijinja-contrib's pycompat). A model without a template gets ChatML, said in the log.

use minijinja::{context, Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One chat message (OpenAI's fields the templates read: an assistant's `tool_calls`, a
/// tool result's `tool_call_id` and `name`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }
}

/// ChatML, the fallback for models whose GGUF has no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A compiled chat template with the model's special tokens.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names the template's origin.
    pub fn new(source: &str, origin: &str, bos: String, eos: String) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        // transformers renders with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<Value, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |fmt: String| {
            // UTC, as llama.cpp; enough for templates that print today's date.
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            strftime_utc(&fmt, secs)
        });
        env.add_filter("tojson", py_tojson);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Usage(format!("chat template ({origin}): {e}")))?;
        Ok(ChatTemplate { env, bos, eos })
    }

    /// The prompt for `messages`, ending with the assistant's turn when asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_with_tools(messages, add_generation_prompt, None)
    }

    /// [`ChatTemplate::render`] with the request's `tools` (OpenAI function definitions),
    /// which templates that support tools (Qwen3, Llama 3.2, Mistral) render into the
    /// prompt; `None`: `tools` is none, as transformers passes it.
    pub fn render_with_tools(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        tools: Option<&serde_json::Value>,
    ) -> Result<String> {
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Usage(format!("chat template: {e}")))?;
        t.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
            tools => tools.map(Value::from_serialize),
        })
        .map_err(|e| Error::Usage(format!("chat template: {e}")))
    }
}

/// Tokens of a rendered chat prompt: special tokens parsed, and BOS added when the model
/// wants one unless the template wrote it already.
pub fn encode_chat(tok: &crate::tokenizer::Tokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = tok.encode(text, false, true)?;
    let bos_text = tok.bos().and_then(|b| tok.token_text(b)).unwrap_or("");
    if let (true, Some(b)) = (tok.add_bos(), tok.bos()) {
        if bos_text.is_empty() || !text.starts_with(bos_text) {
            ids.insert(0, b);
        }
    }
    Ok(ids)
}

/// `%Y`, `%m`, `%d`, `%b`, `%B`, `%H`, `%M`, `%S`, `%%` of a UTC time.
fn strftime_utc(fmt: &str, secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, mi, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('M') => out.push_str(&format!("{mi:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False)` — `", "` and `": "`
/// between items, or with `indent=N` one item per line and `","` — non-ASCII kept, no HTML
/// escaping (minijinja's own filter is compact and escapes `<`, `>`, `&`, `'`, so prompts
/// would differ from what the model was trained on). Keys keep the order of the map
/// (serde_json's: sorted); `sort_keys=true` sorts.
fn py_tojson(v: Value, kwargs: minijinja::value::Kwargs) -> std::result::Result<Value, JinjaError> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let j = serde_json::to_value(&v)
        .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    dump_py(
        &j,
        indent,
        sort_keys.unwrap_or(false),
        ensure_ascii.unwrap_or(false),
        0,
        &mut out,
    );
    Ok(Value::from_safe_string(out))
}

fn dump_py(
    v: &serde_json::Value,
    indent: Option<usize>,
    sort: bool,
    ascii: bool,
    level: usize,
    out: &mut String,
) {
    use serde_json::Value as J;
    let string = |s: &str, out: &mut String| {
        let q = serde_json::to_string(s).unwrap_or_default();
        if ascii {
            for c in q.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    let mut b = [0u16; 2];
                    for u in c.encode_utf16(&mut b) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        } else {
            out.push_str(&q);
        }
    };
    let newline = |lvl: usize, out: &mut String| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * lvl));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(a) if a.is_empty() => out.push_str("[]"),
        J::Object(o) if o.is_empty() => out.push_str("{}"),
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(level + 1, out);
                dump_py(x, indent, sort, ascii, level + 1, out);
            }
            newline(level, out);
            out.push(']');
        }
        J::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            if sort {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(level + 1, out);
                string(k, out);
                out.push_str(": ");
                dump_py(&o[*k], indent, sort, ascii, level + 1, out);
            }
            newline(level, out);
            out.push('}');
        }
        J::String(s) => string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// How much of a streamed answer may go out as text when tools were offered: up to the
/// first `<tool_call>`, and never a tail that could be the start of one.
pub fn streamable_len(full: &str) -> usize {
    const OPEN: &str = "<tool_call>";
    if let Some(i) = full.find(OPEN) {
        return i;
    }
    let keep = (1..OPEN.len())
        .rev()
        .find(|&n| {
            full.len() >= n
                && full.is_char_boundary(full.len() - n)
                && OPEN.starts_with(&full[full.len() - n..])
        })
        .unwrap_or(0);
    full.len() - keep
}

/// Tool calls in generated text, in the Hermes / Qwen format the Qwen templates ask for:
/// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (the closing tag may be cut off by
/// the end of generation). Returns the text outside the calls (trimmed) and each call's
/// name and arguments as a JSON string (OpenAI's `function.arguments`); a block that is not
/// such JSON stays in the text.
pub fn parse_tool_calls(text: &str) -> (String, Vec<(String, String)>) {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        content.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let (inner, next) = match after.find(CLOSE) {
            Some(j) => (&after[..j], &after[j + CLOSE.len()..]),
            None => (after, ""),
        };
        let call = serde_json::from_str::<serde_json::Value>(inner.trim())
            .ok()
            .and_then(|v| {
                let name = v.get("name")?.as_str()?.to_string();
                let args = match v.get("arguments") {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(a) => a.to_string(),
                    None => "{}".to_string(),
                };
                Some((name, args))
            });
        match call {
            Some(c) => calls.push(c),
            None => content.push_str(&rest[i..rest.len() - next.len()]),
        }
        rest = next;
    }
    content.push_str(rest);
    (content.trim().to_string(), calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<Message> {
        vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ]
    }

    #[test]
    fn tool_calls_are_parsed_and_the_rest_is_text() {
        let (c, calls) = parse_tool_calls(
            "Let me look.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        );
        assert_eq!(c, "Let me look.");
        assert_eq!(
            calls,
            vec![("weather".to_string(), r#"{"city":"Paris"}"#.to_string())]
        );
        // Two calls, arguments already a string, the last one cut off by the end.
        let (c, calls) = parse_tool_calls(
            "<tool_call>{\"name\":\"a\",\"arguments\":\"{}\"}</tool_call><tool_call>{\"name\":\"b\"}",
        );
        assert_eq!(c, "");
        assert_eq!(
            calls,
            vec![("a".into(), "{}".into()), ("b".into(), "{}".into())]
        );
        // Not a call: stays text.
        let (c, calls) = parse_tool_calls("x <tool_call>not json</tool_call> y");
        assert_eq!(c, "x <tool_call>not json</tool_call> y");
        assert!(calls.is_empty());
        assert_eq!(streamable_len("Hello <tool"), 6);
        assert_eq!(streamable_len("Hello <tool_call>{"), 6);
        assert_eq!(streamable_len("Hello <b>"), 9);
        assert_eq!(streamable_len("é<"), "é".len());
    }

    #[test]
    fn chatml_and_python_methods_render() {
        let t = ChatTemplate::new(CHATML, "test", "<s>".into(), "</s>".into()).unwrap();
        assert_eq!(
            t.render(&msgs(), true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        // What real templates use: bos_token, .strip(), tojson, raise_exception.
        let src = "{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}{% endif %}[{{ m.role.upper() }}]{{ m.content.strip() }}{% endfor %}{{ messages[1] | tojson }}";
        let t = ChatTemplate::new(src, "test", "<s>".into(), "</s>".into()).unwrap();
        let out = t.render(&msgs(), false).unwrap();
        assert!(out.starts_with("<s>[SYSTEM]Be brief.[USER]Hi{"), "{out}");
        let mut bad = msgs();
        bad[0].role = "tool".into();
        let e = t.render(&bad, false).unwrap_err().to_string();
        assert!(e.contains("no tools"), "{e}");
        assert!(ChatTemplate::new("{% if %}", "x.jinja", String::new(), String::new()).is_err());
    }

    #[test]
    fn strftime_formats_a_known_day() {
        // 2026-12-01 00:00:00 UTC
        assert_eq!(strftime_utc("%d %b %Y %%", 1_796_083_200), "01 Dec 2026 %");
        assert_eq!(
            strftime_utc("%B %H:%M:%S", 1_796_083_200 + 3723),
            "December 01:02:03"
        );
    }
}
