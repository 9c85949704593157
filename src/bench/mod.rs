//! `vkgraph bench`: llama-bench style A/B measurements. For each model the weights
//! are loaded once; every QKV mode runs in the same session (the backend caches the
//! fused layout of each mode, so it is built once), and modes are interleaved per
//! repetition so machine drift hits all of them alike. A test is `ppN` (one batch
//! of N prompt tokens into an empty cache) or `tgN` (N single-token steps from an
//! empty cache; `tgN+s` picks each next token with the default sampler, as `run` does);
//! with a depth D (llama-bench's `-d`, named `tgN @ dD`) the cache first
//! holds D tokens, filled in untimed batches of at most [`DEPTH_BATCH`]. Each measured
//! call waits for the GPU (fence) and reads results back: pp and tg the last token's
//! logits row, as llama-bench does; tg+s only the device's top-k (`Op::TopK`), on which
//! the default sampler then runs, as `vkgraph run` does. One warm-up run per mode and
//! test is not counted.

pub mod profile;
pub mod table;

use std::time::Instant;

use crate::passes::{FusionLevel, QkvMode};
use crate::sched::session::Session;
use crate::Result;

/// Largest batch used to fill the cache up to a test's depth.
pub const DEPTH_BATCH: usize = 512;

/// What a benchmark test measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One batch of N prompt tokens.
    Pp,
    /// N single-token steps.
    Tg,
    /// N single-token steps, each token drawn from the previous step's logits by the
    /// default sampler chain (`crate::sample::SamplerParams::default()`, on the host): what
    /// `vkgraph run` does, so the two can be compared. Named `tgN+s`.
    TgSampled,
}

/// One benchmark test: `n` tokens of `kind` after `depth` tokens already in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    pub kind: Kind,
    pub n: usize,
    pub depth: usize,
}

impl Test {
    /// `ppN` from an empty cache.
    pub fn pp(n: usize) -> Test {
        Test {
            kind: Kind::Pp,
            n,
            depth: 0,
        }
    }

    /// `tgN` from an empty cache.
    pub fn tg(n: usize) -> Test {
        Test {
            kind: Kind::Tg,
            n,
            depth: 0,
        }
    }

    /// `tgN+s`: `tgN` with the default sampler choosing each next token.
    pub fn tg_sampled(n: usize) -> Test {
        Test {
            kind: Kind::TgSampled,
            n,
            depth: 0,
        }
    }

    /// The same test after `depth` cached tokens.
    pub fn at_depth(self, depth: usize) -> Test {
        Test { depth, ..self }
    }

    /// Cache rows the test needs.
    pub fn n_ctx(&self) -> usize {
        self.depth + self.n
    }
}

impl std::fmt::Display for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Pp => write!(f, "pp{}", self.n)?,
            Kind::Tg => write!(f, "tg{}", self.n)?,
            Kind::TgSampled => write!(f, "tg{}+s", self.n)?,
        }
        if self.depth > 0 {
            write!(f, " @ d{}", self.depth)?;
        }
        Ok(())
    }
}

/// One configuration of the A/B: a QKV mode at a fusion level (`--qkv` × `--fusion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    pub qkv: QkvMode,
    pub fusion: FusionLevel,
}

impl std::fmt::Display for Mode {
    /// `auto` at the default fusion level, else `auto fusion=ops`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fusion == FusionLevel::Layer {
            write!(f, "{}", self.qkv)
        } else {
            write!(f, "{} fusion={}", self.qkv, self.fusion)
        }
    }
}

/// Measured samples of one (model, mode, test).
#[derive(Clone, Debug)]
pub struct Row {
    pub model: String,
    pub size_bytes: u64,
    pub params: u64,
    pub backend: String,
    pub qkv: QkvMode,
    pub fusion: FusionLevel,
    pub test: Test,
    /// Tokens per second, one per repetition.
    pub samples: Vec<f64>,
}

impl Row {
    pub fn mean(&self) -> f64 {
        self.samples.iter().sum::<f64>() / self.samples.len().max(1) as f64
    }

    pub fn sd(&self) -> f64 {
        let n = self.samples.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }
}

/// Puts `n` tokens (`tok(i)` for position i) into the cache, in batches of at most
/// `DEPTH_BATCH`: a test's depth, or the prompt before a profiled step.
fn fill_cache(s: &mut Session, n: usize, tok: impl Fn(usize) -> u32) -> Result<()> {
    let mut at = 0;
    while at < n {
        let chunk = (n - at).min(DEPTH_BATCH);
        let toks: Vec<u32> = (at..at + chunk).map(&tok).collect();
        s.forward(&toks, false)?;
        at += chunk;
    }
    Ok(())
}

/// Keeps the device busy for a moment (prompt batches, then a reset) before a profile:
/// an idle GPU runs slow clocks (an H100 idles at 345 MHz against 1,980 under load) and
/// the first profile after a pause measured the ramp (H100: llama-8B's decode step at
/// position 25 took 9.0 ms of GPU time in the first, per-stage profile and 3.0 ms in the
/// per-node profile right after it, whose barriers make it the slower of the two).
fn warm_gpu(s: &mut Session) -> Result<()> {
    const WARM: std::time::Duration = std::time::Duration::from_millis(300);
    let n_vocab = s.model.hp.n_vocab as u32;
    // As many tokens as the context holds (a small `-n` plans a small one).
    let n = s.opts.n_ctx.clamp(1, 64) as u32;
    let toks: Vec<u32> = (0..n).map(|i| (i * 7919) % n_vocab).collect();
    let t = Instant::now();
    while t.elapsed() < WARM {
        s.reset();
        s.forward(&toks, false)?;
    }
    s.reset();
    Ok(())
}

/// Runs `test` once in `mode` and returns tokens per second.
pub fn run_once(s: &mut Session, mode: Mode, test: Test) -> Result<f64> {
    s.opts.qkv = mode.qkv;
    s.opts.fusion = mode.fusion;
    s.reset();
    let n_vocab = s.model.hp.n_vocab as u32;
    // Deterministic token ids spread over the vocabulary.
    let tok = |i: usize| ((i as u64 * 2_654_435_761) % n_vocab as u64) as u32;
    fill_cache(s, test.depth, tok)?;
    let at = test.depth;
    let n = test.n;
    let t = Instant::now();
    match test.kind {
        Kind::Pp => {
            let toks: Vec<u32> = (at..at + n).map(tok).collect();
            s.forward(&toks, false)?;
        }
        Kind::Tg => {
            // Like llama-bench: every step's logits row comes back to the host (into the
            // session's buffer, as llama.cpp's into its context's).
            for i in 0..n {
                s.forward_logits(&[tok(at + i)])?;
            }
        }
        Kind::TgSampled => {
            // As `vkgraph run`: the default chain on the device's top-k (Op::TopK).
            let mut sampler = crate::sample::Sampler::new(crate::sample::SamplerParams::default());
            let k = sampler
                .candidates_needed(crate::backend::vulkan::dispatch::top_k::MAX_K as usize)
                .expect("the default chain reads top-k only");
            let mut last = tok(at);
            for _ in 0..n {
                let top = s.forward_top_k(&[0], &[last], 1, k)?;
                last = sampler.sample_top(&top);
            }
        }
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Measures every test in every mode, `reps` times each after one warm-up.
pub fn run(
    s: &mut Session,
    model_name: &str,
    tests: &[Test],
    modes: &[Mode],
    reps: usize,
) -> Result<Vec<Row>> {
    let f = &s.model.file;
    let size_bytes: u64 = f.tensors.iter().map(|t| t.nbytes).sum();
    let params: u64 = f.tensors.iter().map(|t| t.ne.iter().product::<u64>()).sum();
    let backend = s.backend_names()[0].clone();
    let mut rows: Vec<Row> = Vec::new();
    for &test in tests {
        for &mode in modes {
            // Warm-up: pipelines, weight uploads, the fused layout of this mode.
            let warm = match test.kind {
                Kind::Pp => test,
                Kind::Tg | Kind::TgSampled => Test {
                    n: test.n.min(4),
                    ..test
                },
            };
            run_once(s, mode, warm)?;
            rows.push(Row {
                model: model_name.to_string(),
                size_bytes,
                params,
                backend: backend.clone(),
                qkv: mode.qkv,
                fusion: mode.fusion,
                test,
                samples: Vec::new(),
            });
        }
    }
    for _ in 0..reps {
        for &test in tests {
            for &mode in modes {
                let v = run_once(s, mode, test)?;
                let r = rows
                    .iter_mut()
                    .find(|r| r.test == test && r.qkv == mode.qkv && r.fusion == mode.fusion)
                    .expect("row exists");
                r.samples.push(v);
            }
        }
    }
    s.reset();
    Ok(rows)
}

/// The GPU profile of one prompt batch of `n_prompt` tokens (from an empty cache) in each
/// mode, per node, as markdown.
pub fn profile_pp(
    s: &mut Session,
    model_name: &str,
    modes: &[Mode],
    n_prompt: usize,
) -> Result<String> {
    use crate::backend::ProfileMode;
    let mut out = String::new();
    let n_vocab = s.model.hp.n_vocab as u32;
    let prompt: Vec<u32> = (0..n_prompt as u32).map(|i| (i * 7919) % n_vocab).collect();
    warm_gpu(s)?;
    for &mode in modes {
        s.opts.qkv = mode.qkv;
        s.opts.fusion = mode.fusion;
        s.reset();
        s.forward(&prompt, false)?; // plans and records the prompt shape
        s.reset();
        s.set_profile(ProfileMode::PerNode);
        s.take_profile();
        s.forward(&prompt, false)?;
        s.set_profile(ProfileMode::Off);
        let times = s.take_profile();
        if times.is_empty() {
            out += &format!("\n### {model_name} qkv={mode}: no GPU timestamps on this backend\n");
            break;
        }
        let gpu_us: f64 = times.iter().map(|t| t.ns).sum::<f64>() / 1e3;
        out += &format!(
            "\n### {model_name} pp{n_prompt} (one prompt batch), qkv={mode}: {gpu_us:.1} µs GPU\n"
        );
        out += &profile::table(&times, ProfileMode::PerNode, 1);
    }
    s.reset();
    Ok(out)
}

/// The GPU profile of one tg step in each mode, measured per stage and per node, as
/// markdown: after a 16-token prompt when `depth` is 0, else after `depth` cached tokens
/// (filled as `bench -d` fills them), so `bench -d 4096 --profile` shows where a step's
/// time goes at long context.
pub fn profile_tg(
    s: &mut Session,
    model_name: &str,
    modes: &[Mode],
    depth: usize,
) -> Result<String> {
    use crate::backend::ProfileMode;
    let mut out = String::new();
    let n_vocab = s.model.hp.n_vocab as u32;
    warm_gpu(s)?;
    for &mode in modes {
        for pm in [ProfileMode::PerStage, ProfileMode::PerNode] {
            s.opts.qkv = mode.qkv;
            s.opts.fusion = mode.fusion;
            s.reset();
            let n_prompt = if depth == 0 { 16 } else { depth };
            fill_cache(s, n_prompt, |i| (i as u32).wrapping_mul(7919) % n_vocab)?;
            // Warm the decode shape.
            s.forward(&[1], false)?;
            // Wall time of unprofiled decode steps (submit, GPU, fence, logits read-back):
            // beside the GPU time below it says what the host and the sync cost.
            const WALL_STEPS: usize = 8;
            s.take_step_times();
            let t = Instant::now();
            for i in 0..WALL_STEPS {
                s.forward_logits(&[3 + i as u32 % 7])?;
            }
            let wall_us = t.elapsed().as_secs_f64() * 1e6 / WALL_STEPS as f64;
            let st = s.take_step_times();
            let per = |ns: u64| ns as f64 / 1e3 / st.steps.max(1) as f64;
            s.set_profile(pm);
            s.take_profile();
            s.forward(&[2], false)?;
            s.set_profile(ProfileMode::Off);
            let times = s.take_profile();
            if times.is_empty() {
                out +=
                    &format!("\n### {model_name} qkv={mode}: no GPU timestamps on this backend\n");
                break;
            }
            let gpu_us: f64 = times.iter().map(|t| t.ns).sum::<f64>() / 1e3;
            // The profiled step's position: the prompt, the warm-up and the wall steps
            // before it.
            let pos = n_prompt + 1 + WALL_STEPS;
            out += &format!("\n### {model_name} tg step at position {pos}, qkv={mode}\n");
            if pm == ProfileMode::PerStage {
                out += &format!(
                    "wall per unprofiled step: {wall_us:.1} µs = host set-up {:.1} + submit to \
                     fence {:.1} + read-back {:.1}; GPU per profiled step: {gpu_us:.1} µs; \
                     host + sync ≈ {:.1} µs\n",
                    per(st.before_ns),
                    per(st.run_ns),
                    per(st.read_ns),
                    (wall_us - gpu_us).max(0.0)
                );
            }
            out += &profile::table(&times, pm, 1);
        }
    }
    s.reset();
    Ok(out)
}
