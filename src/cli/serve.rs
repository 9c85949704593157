//! `vkgraph serve`: flags in llama-server's spelling, the model's chat template (or
//! `--chat-template-file`, or ChatML with a note), then `crate::serve::serve`.

use std::path::PathBuf;
use std::sync::Arc;

use super::{default_model, make_session, DeviceArgs, QkvArg};
use crate::model::Model;
use crate::sched::session::SessionOptions;
use crate::serve::template::{ChatTemplate, CHATML};
use crate::serve::ServeConfig;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Model (default: SmolLM2-135M-Instruct from the cache).
    #[arg(short, long)]
    pub model: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Parallel sequences (slots); the context is shared evenly between them.
    #[arg(long = "parallel", visible_alias = "np", default_value_t = 1)]
    pub parallel: usize,
    /// Context size of all slots together (default: the model's, at most 4096 per slot).
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx: Option<usize>,
    /// Prompt tokens per step, shared by the slots processing prompts.
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch: usize,
    /// Requests that may wait when every slot is busy; beyond them: 503 + Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Require `Authorization: Bearer KEY`.
    #[arg(long = "api-key")]
    pub api_key: Option<String>,
    /// When a slot's context is full, drop half of its tokens after the request's
    /// `n_keep` (default 0) and go on, K re-roped (llama-server's --context-shift); off,
    /// the answer ends there with finish_reason "length".
    #[arg(long = "context-shift")]
    pub context_shift: bool,
    /// A Jinja chat template to use instead of the model's.
    #[arg(long = "chat-template-file")]
    pub chat_template_file: Option<PathBuf>,
    #[command(flatten)]
    pub dev: DeviceArgs,
    #[command(flatten)]
    pub qkv: QkvArg,
    #[command(flatten)]
    pub lora: super::LoraArgs,
}

/// The chat template: the file given, the GGUF's, or ChatML (said on stderr).
pub(crate) fn chat_template(
    model: &Model,
    tok: &Tokenizer,
    file: Option<&PathBuf>,
) -> Result<ChatTemplate> {
    let piece = |t: Option<u32>| {
        t.and_then(|t| tok.token_text(t))
            .unwrap_or_default()
            .to_string()
    };
    let (bos, eos) = (piece(tok.bos()), piece(tok.eos()));
    if let Some(f) = file {
        let src = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
        return ChatTemplate::new(&src, &f.display().to_string(), bos, eos);
    }
    match model.file.get_str("tokenizer.chat_template") {
        Ok(src) => ChatTemplate::new(src, "tokenizer.chat_template", bos, eos),
        Err(_) => {
            eprintln!("note: the model has no tokenizer.chat_template; chat requests use ChatML");
            ChatTemplate::new(CHATML, "ChatML", bos, eos)
        }
    }
}

pub fn serve(a: &ServeArgs) -> Result<()> {
    let path = match &a.model {
        Some(p) => p.clone(),
        None => default_model()?,
    };
    let model = Arc::new(a.lora.open(&path)?);
    let tok = Arc::new(Tokenizer::from_gguf(&model.file)?);
    let template = chat_template(&model, &tok, a.chat_template_file.as_ref())?;
    let n_seq = a.parallel.max(1);
    let n_ctx = a.ctx.unwrap_or(model.hp.n_ctx_train.min(4096) * n_seq);
    if n_ctx < n_seq * 2 {
        return Err(Error::Usage(format!(
            "-c {n_ctx} is too small for {n_seq} slots (at least 2 cells each)"
        )));
    }
    let opts = SessionOptions {
        qkv: a.qkv.qkv_mode()?,
        fusion: a.qkv.fusion_level()?,
        n_ctx,
        n_seq,
        ..Default::default()
    };
    let (m2, dev) = (model.clone(), a.dev.clone());
    let model_id = path
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let cfg = ServeConfig {
        host: a.host.clone(),
        port: a.port,
        api_key: a.api_key.clone(),
        n_batch: a.batch.max(1),
        model_id,
        queue: a.queue,
        context_shift: a.context_shift,
    };
    crate::serve::serve(
        move || {
            let mut s = make_session(m2, &dev, opts)?;
            eprintln!(
                "model loaded on {} ({n_seq} slots of {} tokens)",
                s.backend_names().join(" + "),
                s.kv().seq_capacity()
            );
            let t = std::time::Instant::now();
            let warmed = crate::serve::engine::warm_up(&mut s)?;
            eprintln!(
                "warmed decode batches of 1..{warmed} sequences in {:.2} s",
                t.elapsed().as_secs_f64()
            );
            Ok(s)
        },
        tok,
        template,
        cfg,
        |addr| eprintln!("listening on http://{addr}"),
    )
}
