//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja as
//! transformers renders it (trim_blocks, lstrip_blocks) — `messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `raise_exception`, `strftime_now`, `tojson`, and Python string methods
//! (minijinja-contrib's pycompat). A model without a template gets ChatML, said in the log.

use minijinja::{context, Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One chat message.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
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
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Usage(format!("chat template ({origin}): {e}")))?;
        Ok(ChatTemplate { env, bos, eos })
    }

    /// The prompt for `messages`, ending with the assistant's turn when asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Usage(format!("chat template: {e}")))?;
        t.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<Message> {
        vec![
            Message {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            Message {
                role: "user".into(),
                content: "Hi".into(),
            },
        ]
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
