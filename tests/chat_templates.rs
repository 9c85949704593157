//! Chat templates of real models rendered by `serve::template::ChatTemplate` (minijinja)
//! equal what Python's jinja2 renders with transformers' settings
//! (`scripts/render_chat_template.py`) for the same conversations — or both raise. The
//! templates: SmolLM2's (from its GGUF) and Qwen3, Gemma 2, Llama 3.2, Mistral Nemo
//! (`tests/data/chat-templates/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vkgraph::serve::template::{ChatTemplate, Message};

fn msg(role: &str, content: &str) -> Message {
    Message::new(role, content)
}

fn conversations() -> Vec<(&'static str, Vec<Message>)> {
    vec![
        ("user", vec![msg("user", "What is 2+2?")]),
        (
            "system+user",
            vec![msg("system", "  Be brief. "), msg("user", "Hi\nthere")],
        ),
        (
            "multi-turn",
            vec![
                msg("user", "Hello"),
                msg("assistant", "Hi! How can I help?"),
                msg("user", "Name a colour."),
            ],
        ),
        (
            "assistant-first",
            vec![msg("assistant", "I start."), msg("user", "ok")],
        ),
    ]
}

fn python_render(tmpl: &Path, msgs: &[Message], bos: &str, eos: &str) -> Result<String, String> {
    let ctx = serde_json::json!({
        "messages": msgs, "add_generation_prompt": true, "bos_token": bos, "eos_token": eos,
    });
    python_render_ctx(tmpl, &ctx)
}

fn python_render_ctx(tmpl: &Path, ctx: &serde_json::Value) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("vkgraph-tmpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One file per call: the tests run on several threads.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cpath = dir.join(format!("ctx-{k}.json"));
    std::fs::write(&cpath, ctx.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/render_chat_template.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(tmpl)
        .arg(&cpath)
        .output()
        .expect("python3 (scripts/setup-debian.sh installs python3-jinja2)");
    let text = String::from_utf8(out.stdout).unwrap();
    match out.status.code() {
        Some(0) => Ok(text),
        Some(3) => Err(text),
        _ => panic!(
            "render_chat_template.py failed (is python3-jinja2 installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Both renderers gave the same text, or both raised the same message.
fn assert_same(what: &str, ours: &vkgraph::Result<String>, theirs: &Result<String, String>) {
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: minijinja vs jinja2"),
        (Err(e), Err(r)) => {
            let msg = r.trim_start_matches("raised: ");
            assert!(e.to_string().contains(msg), "{what}: {e} vs {r}");
        }
        _ => panic!("{what}: minijinja {ours:?} vs jinja2 {theirs:?}"),
    }
}

fn check(name: &str, path: &Path, src: &str, bos: &str, eos: &str) -> usize {
    let t = ChatTemplate::new(src, name, bos.into(), eos.into()).unwrap();
    let mut compared = 0;
    for (conv, msgs) in conversations() {
        let ours = t.render(&msgs, true);
        let theirs = python_render(path, &msgs, bos, eos);
        assert_same(&format!("{name} / {conv}"), &ours, &theirs);
        compared += 1;
    }
    compared
}

#[test]
fn real_chat_templates_render_as_jinja2_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat-templates");
    let mut n = 0;
    for (file, bos, eos) in [
        ("qwen3-0.6b.jinja", "", "<|im_end|>"),
        ("gemma-2-2b-it.jinja", "<bos>", "<eos>"),
        (
            "llama-3.2-3b-instruct.jinja",
            "<|begin_of_text|>",
            "<|eot_id|>",
        ),
        ("mistral-nemo-instruct-2407.jinja", "<s>", "</s>"),
    ] {
        let path = dir.join(file);
        let src = std::fs::read_to_string(&path).unwrap();
        n += check(file, &path, &src, bos, eos);
    }
    // SmolLM2's, from its GGUF (scripts/fetch-smollm2.sh; CI fetches it).
    let home = std::env::var("VKGRAPH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/vkgraph"));
    let gguf = home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let f = vkgraph::gguf::GgufFile::open(&gguf)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-smollm2.sh)", gguf.display()));
    let src = f.get_str("tokenizer.chat_template").unwrap().to_string();
    let path = std::env::temp_dir().join(format!("vkgraph-smollm2-{}.jinja", std::process::id()));
    std::fs::write(&path, &src).unwrap();
    n += check("SmolLM2", &path, &src, "<|im_start|>", "<|im_end|>");
    assert_eq!(n, 5 * conversations().len());
}

/// With OpenAI `tools` and a tool round trip (an assistant's `tool_calls`, a `tool`
/// message), the templates that support tools render as jinja2 does.
#[test]
fn tools_render_as_jinja2_does() {
    let tools = serde_json::json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    let mut call = Message::new("assistant", "");
    call.tool_calls = Some(serde_json::json!([{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]));
    let mut result = Message::new("tool", "{\"temp_c\": 21}");
    result.tool_call_id = Some("call_1".into());
    result.name = Some("get_weather".into());
    let convs = vec![
        vec![Message::new("user", "Weather in Paris?")],
        vec![Message::new("user", "Weather in Paris?"), call, result],
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat-templates");
    let mut n = 0;
    for (file, bos, eos) in [
        ("qwen3-0.6b.jinja", "", "<|im_end|>"),
        (
            "llama-3.2-3b-instruct.jinja",
            "<|begin_of_text|>",
            "<|eot_id|>",
        ),
        ("mistral-nemo-instruct-2407.jinja", "<s>", "</s>"),
    ] {
        let path = dir.join(file);
        let src = std::fs::read_to_string(&path).unwrap();
        let t = ChatTemplate::new(&src, file, bos.into(), eos.into()).unwrap();
        for msgs in &convs {
            let ours = t.render_with_tools(msgs, true, Some(&tools));
            let ctx = serde_json::json!({"messages": msgs, "add_generation_prompt": true,
                "bos_token": bos, "eos_token": eos, "tools": tools});
            let theirs = python_render_ctx(&path, &ctx);
            assert_same(file, &ours, &theirs);
            if let Ok(a) = &ours {
                assert!(
                    a.contains("get_weather"),
                    "{file}: tools not rendered:\n{a}"
                );
            }
            n += 1;
        }
    }
    assert_eq!(n, 6);
}
