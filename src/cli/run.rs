//! `vkgraph run`: tokenize the prompt, evaluate it in batches (prefill), then
//! sample one token per step, streaming text to stdout (or JSON lines with the top-K
//! log-probabilities), and close with a speed line on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{default_model, make_session, DeviceArgs, QkvArg};
use crate::sample::{top_k_logprobs, Sampler, SamplerParams};
use crate::sched::session::{Session, SessionOptions};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Model (default: SmolLM2-135M-Instruct from the cache).
    #[arg(short, long)]
    pub model: Option<PathBuf>,
    #[arg(short, long)]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    /// Context size (default: the model's, at most 4096).
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx: Option<usize>,
    /// Prompt batch size.
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch: usize,
    #[arg(short = 's', long, default_value_t = 0x5eed)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Print the top-K log-probabilities of each generated token (with --json).
    #[arg(long = "n-probs", default_value_t = 0)]
    pub n_probs: usize,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Wrap the prompt as one user turn in the model's chat format (ChatML or Llama 3,
    /// recognised from the GGUF's `tokenizer.chat_template`).
    #[arg(long)]
    pub chat: bool,
    /// Per-op GPU profile after the run.
    #[arg(long)]
    pub profile: bool,
    /// When the context is full, drop half of the tokens after the first --keep and go
    /// on (llama.cpp's context shift; the cached K is re-roped). Off: a prompt plus
    /// -n that exceed the context are refused up front.
    #[arg(long = "context-shift")]
    pub context_shift: bool,
    /// Tokens at the start of the context that a context shift keeps (llama.cpp's
    /// --keep).
    #[arg(long, default_value_t = 0)]
    pub keep: usize,
    #[command(flatten)]
    pub dev: DeviceArgs,
    #[command(flatten)]
    pub qkv: QkvArg,
    #[command(flatten)]
    pub lora: super::LoraArgs,
}

/// The text of one token as it appears in the output stream (SentencePiece's leading
/// space kept: `decode` of a lone token would strip it as the start of a text).
fn piece(tok: &crate::tokenizer::Tokenizer, id: u32) -> String {
    String::from_utf8_lossy(&tok.token_bytes(id)).into_owned()
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

pub fn run(a: &RunArgs) -> Result<()> {
    let path = match &a.model {
        Some(p) => p.clone(),
        None => default_model()?,
    };
    let model = Arc::new(a.lora.open(&path)?);
    let tok = Tokenizer::from_gguf(&model.file)?;
    let n_ctx = a.ctx.unwrap_or(model.hp.n_ctx_train.min(4096));
    let opts = SessionOptions {
        qkv: a.qkv.qkv_mode()?,
        fusion: a.qkv.fusion_level()?,
        n_ctx,
        ..Default::default()
    };
    let t_load = Instant::now();
    let mut s = make_session(model.clone(), &a.dev, opts)?;
    let mut prompt = if a.chat {
        // The same template code as `vkgraph serve` (the GGUF's Jinja, or ChatML).
        let t = super::serve::chat_template(&model, &tok, None)?;
        let user = crate::serve::template::Message::new("user", &a.prompt);
        crate::serve::template::encode_chat(&tok, &t.render(&[user], true)?)?
    } else {
        tok.encode(&a.prompt, true, false)?
    };
    let mut last_pct = u64::MAX;
    s.load(prompt.len().min(a.batch.max(1)), move |done, total| {
        if total == 0 || done * 100 / total == last_pct {
            return;
        }
        last_pct = done * 100 / total;
        let w = 30;
        let f = (done * w / total) as usize;
        eprint!(
            "\rloading weights [{}{}] {:3}% ({:.0}/{:.0} MiB)",
            "#".repeat(f),
            ".".repeat(w as usize - f),
            done * 100 / total,
            done as f64 / (1 << 20) as f64,
            total as f64 / (1 << 20) as f64
        );
        if done == total {
            eprintln!();
        }
    })?;
    if prompt.is_empty() {
        return Err(Error::Usage("the prompt encodes to no tokens".into()));
    }
    if prompt.len() + a.n_predict > n_ctx && !(a.context_shift && prompt.len() < n_ctx) {
        return Err(Error::ContextFull(format!(
            "prompt ({} tokens) + {} to generate exceed the context of {n_ctx} (raise -c{})",
            prompt.len(),
            a.n_predict,
            if prompt.len() < n_ctx {
                " or pass --context-shift"
            } else {
                ""
            }
        )));
    }
    if a.context_shift && a.keep + 2 > n_ctx {
        return Err(Error::Usage(format!(
            "--keep {} leaves no room to shift a context of {n_ctx}",
            a.keep
        )));
    }
    let mut sampler = Sampler::new(SamplerParams {
        temp: a.temp,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repeat_penalty: a.repeat_penalty,
        seed: a.seed,
        ..Default::default()
    });
    // The sampler's chain reads only the top-k logits: where it can, the device reduces
    // the logits to those (Op::TopK) and only 2 + 2k floats come back per token.
    let max_k = crate::backend::vulkan::dispatch::top_k::MAX_K as usize;
    let k_dev = sampler
        .candidates_needed(max_k)
        .map(|k| if a.json { k.max(a.n_probs) } else { k })
        .filter(|&k| k <= max_k);
    // Sequence 0 for every token of a batch (no allocation per step).
    let seq0 = vec![0; a.batch.max(1)];
    let fwd = |s: &mut Session, t: &[u32]| -> Result<Vec<f32>> {
        match k_dev {
            Some(k) => s.forward_top_k(&seq0[..t.len()], t, 1, k),
            None => s.forward(t, false),
        }
    };
    // Warm-up, as llama.cpp does: one pass of each graph the run uses (prompt batch,
    // single token, each with its TOP_K) so planning, recording and pipeline creation are
    // not counted in the speed line.
    let n_batch = prompt.len().min(a.batch.max(1));
    fwd(&mut s, &prompt[..n_batch])?;
    if n_batch > 1 {
        fwd(&mut s, &prompt[..1])?;
    }
    s.reset();
    eprintln!(
        "model: {} ({}, {} layers) on {} (qkv {}), ready in {:.2} s",
        path.display(),
        model.hp.arch.name(),
        model.hp.n_layer,
        s.backend_names().join(" + "),
        s.opts.qkv,
        t_load.elapsed().as_secs_f64()
    );
    let out = std::io::stdout();
    let mut out = out.lock();
    if !a.json {
        write!(out, "{}{}", a.prompt, if a.chat { "\n" } else { "" }).ok();
        out.flush().ok();
    }
    if a.profile {
        s.set_profile(crate::backend::ProfileMode::PerStage);
    }
    // Prefill.
    let t0 = Instant::now();
    let mut logits = Vec::new();
    for chunk in prompt.chunks(a.batch.max(1)) {
        logits = fwd(&mut s, chunk)?;
    }
    let t_prompt = t0.elapsed();
    let mut dec = StreamDecoder::new();
    let t1 = Instant::now();
    let mut n_gen = 0;
    for _ in 0..a.n_predict {
        let id = match k_dev {
            Some(_) => sampler.sample_top(&logits),
            None => sampler.sample(&logits, &prompt),
        };
        if a.json {
            let top: Vec<(u32, f64)> = match k_dev {
                // (id, logit) pairs after the max and the log-sum-exp.
                Some(_) => logits[2..]
                    .chunks(2)
                    .take(a.n_probs)
                    .map(|c| (c[0] as u32, f64::from(c[1]) - f64::from(logits[1])))
                    .collect(),
                None => top_k_logprobs(&logits, a.n_probs),
            };
            let tops: Vec<String> = top
                .iter()
                .map(|(i, lp)| {
                    format!(
                        "{{\"id\":{i},\"text\":{},\"logprob\":{lp:.6}}}",
                        json_str(&piece(&tok, *i))
                    )
                })
                .collect();
            writeln!(
                out,
                "{{\"id\":{id},\"text\":{},\"top\":[{}]}}",
                json_str(&piece(&tok, id)),
                tops.join(",")
            )
            .ok();
        } else {
            write!(out, "{}", dec.push(&tok, id)).ok();
            out.flush().ok();
        }
        n_gen += 1;
        prompt.push(id);
        if tok.is_eog(id) {
            break;
        }
        if s.n_past() >= n_ctx {
            // Full (only with --context-shift, checked above).
            let n = s.n_past();
            let (keep, discard) = s.shift_full_seq(0, a.keep)?;
            log::info!("context shift: keep {keep}, drop {discard} of {n} tokens");
        }
        logits = fwd(&mut s, &[id])?;
    }
    if !a.json {
        writeln!(out, "{}", dec.flush()).ok();
    }
    let t_gen = t1.elapsed();
    if a.profile {
        let times = s.take_profile();
        eprintln!(
            "{}",
            crate::bench::profile::table(&times, crate::backend::ProfileMode::PerStage, n_gen + 1)
        );
    }
    let n_prompt = prompt.len() - n_gen;
    eprintln!(
        "prompt: {n_prompt} tokens in {:.1} ms ({:.1} t/s) | generation: {n_gen} tokens in {:.1} ms ({:.1} t/s)",
        t_prompt.as_secs_f64() * 1e3,
        n_prompt as f64 / t_prompt.as_secs_f64(),
        t_gen.as_secs_f64() * 1e3,
        n_gen as f64 / t_gen.as_secs_f64().max(1e-9)
    );
    Ok(())
}
