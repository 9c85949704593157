//! The command-line interface (DESIGN.md's CLI contract): argument parsing with clap
//! and one function per subcommand. `main.rs` only calls [`main`] and turns an
//! error into `error: …` on stderr with a non-zero exit status.

mod info;
mod run;
mod serve;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::model::gen::{self, GenOptions, Preset};
use crate::model::quant_mix::Ftype;
use crate::model::{Arch, Model};
use crate::passes::{FusionLevel, QkvMode};
use crate::sched::session::SessionOptions;
use crate::{Error, Result};

#[derive(Parser, Debug)]
#[command(
    name = "vkgraph",
    version,
    about = "Run quantized GGUF LLMs on any Vulkan GPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

/// Where a model runs.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Vulkan device index (see `vkgraph devices`).
    #[arg(long)]
    pub device: Option<usize>,
    /// Run on the CPU reference backend only.
    #[arg(long, conflicts_with = "device")]
    pub cpu: bool,
    /// Layers to offload, as llama.cpp: the last N layers on the GPU, the rest on the CPU
    /// (0 = --cpu; more than the layer count also puts the output head on the GPU).
    #[arg(long = "n-gpu-layers", visible_alias = "ngl")]
    pub ngl: Option<usize>,
    /// Offload as many layers as fit the GPU's memory (weights + KV cache for the
    /// context, a margin kept), the rest on the CPU — as llama.cpp's `-fit`; ignored
    /// with `-ngl`.
    #[arg(long)]
    pub fit: bool,
    /// Enable the Vulkan validation layer (slow; for debugging).
    #[arg(long)]
    pub validate: bool,
}

/// LoRA adapters (run, serve, bench, dump).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoraArgs {
    /// LoRA adapter GGUF (llama.cpp's adapter format); repeat for several.
    #[arg(long = "lora")]
    pub lora: Vec<PathBuf>,
    /// Scale of every --lora adapter (times the file's alpha / rank, as llama.cpp).
    #[arg(long = "lora-scale", default_value_t = 1.0)]
    pub lora_scale: f32,
}

impl LoraArgs {
    /// Opens the model at `path` with these adapters.
    pub fn open(&self, path: &std::path::Path) -> Result<Model> {
        let list: Vec<(PathBuf, f32)> = self
            .lora
            .iter()
            .map(|p| (p.clone(), self.lora_scale))
            .collect();
        Model::open_with_lora(path, &list)
    }
}

/// One sibling-matmul mode (run, dump; `bench` takes a list instead).
#[derive(clap::Args, Debug, Clone)]
pub struct QkvArg {
    /// Sibling-matmul mode: off | fuse | reorder | group | auto (default: $VKGRAPH_QKV or auto).
    #[arg(long)]
    pub qkv: Option<String>,
    /// Fusion level: none | ops | layer (default: $VKGRAPH_FUSION or layer).
    #[arg(long)]
    pub fusion: Option<String>,
}

impl QkvArg {
    /// The flag, else `VKGRAPH_FUSION` (`crate::options`), else layer.
    pub fn fusion_level(&self) -> Result<FusionLevel> {
        match &self.fusion {
            Some(s) => FusionLevel::parse(s).map_err(Error::Usage),
            None => Ok(options()?.fusion),
        }
    }

    /// The flag, else `VKGRAPH_QKV` (`crate::options`), else auto.
    pub fn qkv_mode(&self) -> Result<QkvMode> {
        match &self.qkv {
            Some(s) => QkvMode::parse(s),
            None => Ok(options()?.qkv),
        }
    }
}

/// The environment's options, read once per process (`crate::options`; the CLI is the
/// only reader: it hands the values down).
pub fn options() -> Result<&'static crate::options::Options> {
    static OPTS: std::sync::OnceLock<Result<crate::options::Options>> = std::sync::OnceLock::new();
    OPTS.get_or_init(crate::options::Options::from_env)
        .as_ref()
        .map_err(|e| Error::Usage(e.to_string()))
}

impl DeviceArgs {
    pub fn cpu_only(&self) -> bool {
        self.cpu || self.ngl == Some(0)
    }

    /// `-ngl N` (N > 0): the last N layers on the GPU, the rest on the CPU.
    pub fn placement(&self) -> crate::sched::Placement {
        crate::sched::Placement {
            gpu_layers: self.ngl.filter(|&n| n > 0),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List Vulkan devices and their capabilities.
    Devices,
    /// Metadata, tensors by type, per-layer Q/K/V types.
    Info { model: PathBuf },
    /// Write a random-weight GGUF model of a real shape.
    GenModel {
        #[arg(long, default_value = "llama")]
        arch: String,
        #[arg(long, default_value = "tiny")]
        preset: String,
        /// llama-quantize ftype (q4_0, q4_k_m, q2_k, ...) or pure-TYPE.
        #[arg(long, default_value = "q4_0")]
        quant: String,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Generate text.
    Run(run::RunArgs),
    /// OpenAI-compatible HTTP server (chat and text completions, streaming, parallel slots).
    Serve(serve::ServeArgs),
    /// Every op × type × shape on Vulkan devices against the CPU reference.
    TestOps {
        /// Only this op (mul_mat_vec, mul_mat, mul_mat_vecq, mul_mat_vec_layer,
        /// mul_mat_vecq_layer, get_rows, rms_norm, add, swiglu, scale, rope, attention, …;
        /// `--list` names every case).
        #[arg(short = 'o', long = "op")]
        op: Option<String>,
        /// Only this backend: `Vulkan0`, `Vulkan1`, … (or the bare index as `vkgraph
        /// devices` lists it); default: every Vulkan device, CPU drivers (lavapipe) included.
        #[arg(short = 'b', long = "backend", visible_alias = "device")]
        backend: Option<String>,
        /// List the cases instead of running them.
        #[arg(long)]
        list: bool,
        /// Also time each case (GPU timestamps, 10 dispatches).
        #[arg(long)]
        perf: bool,
        /// Run under the validation layer; any message fails the run.
        #[arg(long)]
        validate: bool,
    },
    /// A/B benchmark of QKV modes, llama-bench style.
    Bench(BenchArgs),
    /// Print the graph-assignment dump of one forward pass.
    Dump {
        #[arg(short, long)]
        model: PathBuf,
        /// Tokens in the batch.
        #[arg(short = 'n', long, default_value_t = 1)]
        tokens: usize,
        #[command(flatten)]
        dev: DeviceArgs,
        #[command(flatten)]
        qkv: QkvArg,
        #[command(flatten)]
        lora: LoraArgs,
    },
    /// Write a random LoRA adapter (llama.cpp's adapter GGUF) for a model.
    GenLora {
        #[arg(short, long)]
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 16)]
        rank: usize,
        /// Adapted weights per layer (of attn_q, attn_k, attn_v, attn_output, ffn_gate,
        /// ffn_up, ffn_down).
        #[arg(long, default_value = "attn_q,attn_v")]
        targets: String,
        #[arg(long, default_value_t = 32.0)]
        alpha: f32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Storage type of the factors: f32 or f16.
        #[arg(long = "type", default_value = "f32")]
        ty: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Model file(s); repeat -m for several.
    #[arg(short, long, required = true)]
    pub model: Vec<PathBuf>,
    /// Prompt-processing test sizes (comma-separated; 0 for none).
    #[arg(
        short = 'p',
        long = "n-prompt",
        default_value = "512",
        value_delimiter = ','
    )]
    pub n_prompt: Vec<usize>,
    /// Generation test sizes (comma-separated; 0 for none).
    #[arg(
        short = 'n',
        long = "n-gen",
        default_value = "128",
        value_delimiter = ','
    )]
    pub n_gen: Vec<usize>,
    /// Depths: tokens already in the KV cache before each test (comma-separated, as
    /// llama-bench's -d; tests at depth D are named `tg128 @ d4096`).
    #[arg(
        short = 'd',
        long = "n-depth",
        default_value = "0",
        value_delimiter = ','
    )]
    pub n_depth: Vec<usize>,
    /// Also measure each generation size with the default sampler choosing the tokens
    /// (tests named `tgN+s`: what `vkgraph run` gets).
    #[arg(long)]
    pub sampled: bool,
    /// Repetitions (after one warm-up).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub reps: usize,
    /// QKV modes to compare (comma-separated).
    #[arg(
        long = "qkv",
        default_value = "off,fuse,reorder,group,auto",
        value_delimiter = ','
    )]
    pub modes: Vec<String>,
    /// Fusion levels to compare (comma-separated): none (every op its own kernel), ops
    /// (element-wise pairs fused), layer (norms, residual adds and SwiGLU folded into the
    /// decode matmuls).
    #[arg(long = "fusion", default_value = "layer", value_delimiter = ',')]
    pub fusion: Vec<String>,
    /// Output format: md, json or csv.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: String,
    /// After the measurements, profile one tg step per mode (per stage and per node), and
    /// one prompt batch of the first nonzero `-p` size (per node).
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub dev: DeviceArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
}

fn bench(a: &BenchArgs) -> Result<()> {
    use crate::bench::{self, table, Test};
    let qkvs = a
        .modes
        .iter()
        .map(|m| QkvMode::parse(m))
        .collect::<Result<Vec<_>>>()?;
    let levels = a
        .fusion
        .iter()
        .map(|f| FusionLevel::parse(f).map_err(Error::Usage))
        .collect::<Result<Vec<_>>>()?;
    let modes: Vec<bench::Mode> = levels
        .iter()
        .flat_map(|&fusion| qkvs.iter().map(move |&qkv| bench::Mode { qkv, fusion }))
        .collect();
    let mut tests: Vec<Test> = a
        .n_prompt
        .iter()
        .filter(|&&p| p > 0)
        .map(|&p| Test::pp(p))
        .collect();
    for &n in a.n_gen.iter().filter(|&&n| n > 0) {
        tests.push(Test::tg(n));
        if a.sampled {
            tests.push(Test::tg_sampled(n));
        }
    }
    let depths = if a.n_depth.is_empty() {
        vec![0]
    } else {
        a.n_depth.clone()
    };
    let tests: Vec<Test> = depths
        .iter()
        .flat_map(|&d| tests.iter().map(move |t| t.at_depth(d)))
        .collect();
    if !["md", "json", "csv"].contains(&a.output.as_str()) {
        return Err(Error::Usage(format!(
            "unknown output format `{}` (md, json, csv)",
            a.output
        )));
    }
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for path in &a.model {
        let model = Arc::new(a.lora.open(path)?);
        let n_ctx = tests.iter().map(Test::n_ctx).max().unwrap_or(1);
        // Room for the profile step too (a 16-token prompt, or the depth, and ten
        // decode steps).
        let opts = SessionOptions {
            n_ctx: n_ctx.max(1) + 32,
            ..Default::default()
        };
        let mut s = make_session(model.clone(), &a.dev, opts)?;
        let name = path
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().to_string());
        eprintln!("bench: {name} on {}", s.backend_names().join(" + "));
        rows.extend(bench::run(&mut s, &name, &tests, &modes, a.reps.max(1))?);
        if a.profile {
            for &d in &depths {
                profiles.push(bench::profile_tg(&mut s, &name, &modes, d)?);
            }
            if let Some(&np) = a.n_prompt.iter().find(|&&p| p > 0) {
                profiles.push(bench::profile_pp(&mut s, &name, &modes, np)?);
            }
        }
    }
    let text = match a.output.as_str() {
        "json" => table::json(&rows),
        "csv" => table::csv(&rows),
        _ => table::markdown(&rows),
    };
    println!("{text}");
    for p in profiles {
        println!("{p}");
    }
    Ok(())
}

/// llama.cpp's single-dash long flags that users type from habit (`-ngl 99`), as ours.
fn llama_cpp_spelling(arg: String) -> String {
    match arg.as_str() {
        "-ngl" => "--ngl".into(),
        "-np" => "--np".into(),
        _ => arg,
    }
}

/// Parses the arguments and runs the subcommand.
pub fn main() -> Result<()> {
    let cli = Cli::parse_from(std::env::args().map(llama_cpp_spelling));
    match cli.cmd {
        Command::Devices => {
            print!("{}", crate::backend::vulkan::describe_devices()?);
            Ok(())
        }
        Command::Info { model } => info::info(&model),
        Command::GenModel {
            arch,
            preset,
            quant,
            output,
            seed,
        } => {
            let o = GenOptions {
                arch: Arch::parse(&arch)?,
                preset: Preset::find(&preset)?,
                ftype: Ftype::parse(&quant)?,
                seed,
            };
            let t = std::time::Instant::now();
            gen::generate(&o, &output)?;
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "wrote {} ({} {} {}, {:.1} MiB) in {:.1} s",
                output.display(),
                arch,
                preset,
                o.ftype.name(),
                size as f64 / (1 << 20) as f64,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Run(a) => run::run(&a),
        Command::Serve(a) => serve::serve(&a),
        Command::TestOps {
            op,
            backend,
            list,
            perf,
            validate,
        } => {
            let device = match backend.as_deref() {
                None => None,
                Some(b) => Some(b.strip_prefix("Vulkan").unwrap_or(b).parse().map_err(|_| {
                    Error::Usage(format!(
                        "test-ops -b {b}: expected a Vulkan backend such as Vulkan0"
                    ))
                })?),
            };
            test_ops(op.as_deref(), device, list, perf, validate)
        }
        Command::Bench(a) => bench(&a),
        Command::GenLora {
            model,
            output,
            rank,
            targets,
            alpha,
            seed,
            ty,
        } => {
            let m = Model::open(&model)?;
            let targets: Vec<&str> = targets.split(',').map(str::trim).collect();
            let ty = match ty.as_str() {
                "f32" => crate::quant::GgmlType::F32,
                "f16" => crate::quant::GgmlType::F16,
                t => {
                    return Err(Error::Usage(format!(
                        "gen-lora: --type {t} (expected f32 or f16)"
                    )))
                }
            };
            gen::generate_lora_as(&m, &targets, rank, alpha, seed, ty, &output)?;
            eprintln!(
                "wrote {} (rank {rank}, alpha {alpha}, {} per layer)",
                output.display(),
                targets.join(", ")
            );
            Ok(())
        }
        Command::Dump {
            model,
            tokens,
            dev,
            qkv,
            lora,
        } => {
            let model = Arc::new(lora.open(&model)?);
            let opts = SessionOptions {
                qkv: qkv.qkv_mode()?,
                fusion: qkv.fusion_level()?,
                n_ctx: tokens.max(1),
                ..Default::default()
            };
            let session = make_session(model.clone(), &dev, opts)?;
            let (g, a) = session.plan(tokens, false)?;
            println!(
                "# model: {} ({} layers), qkv: {}, fusion: {}, tokens: {tokens}",
                model.file.path.display(),
                model.hp.n_layer,
                session.opts.qkv,
                session.opts.fusion
            );
            print!("{}", crate::sched::dump::dump(&g, &a));
            for (backend, lines) in session.describe_kernels(&g, &a) {
                println!("## KERNELS ({backend})\n{lines}");
            }
            print!(
                "{}",
                crate::sched::dump::summary(
                    &model,
                    tokens,
                    tokens,
                    &session.opts.limits,
                    session.opts.fusion,
                    &|g, n| session.fuses_mat_vec(g, n),
                    &|g, nodes| session.groups_mat_vec(g, nodes)
                )?
            );
            Ok(())
        }
    }
}

/// Backends for a model in priority order: the Vulkan device (unless `--cpu`), then the CPU.
pub fn make_backends(
    model: &Arc<Model>,
    dev: &DeviceArgs,
) -> Result<(Vec<Box<dyn Backend>>, crate::passes::SiblingLimits)> {
    let mut v: Vec<Box<dyn Backend>> = Vec::new();
    let mut limits = crate::passes::SiblingLimits::default();
    // Like llama.cpp, skip CPU Vulkan drivers (lavapipe) unless asked for by index: the
    // CPU backend is several times faster on the same cores.
    let only_cpu_drivers = dev.device.is_none()
        && !dev.cpu_only()
        && crate::backend::vulkan::enumerate_devices().is_ok_and(|d| {
            !d.is_empty()
                && d.iter()
                    .all(|c| c.device_type == ash::vk::PhysicalDeviceType::CPU)
        });
    if only_cpu_drivers {
        eprintln!(
            "note: no GPU found, running on the CPU backend; the only Vulkan device is a CPU \
             driver (--device 0 uses it)"
        );
    }
    if !dev.cpu_only() && !only_cpu_drivers {
        let vk = crate::backend::vulkan::VulkanBackend::new(
            model.clone(),
            &crate::backend::vulkan::ContextOptions {
                device_index: dev.device,
                validation: dev.validate,
                fence_timeout_s: options()?.fence_timeout_s,
                fence_spin_us: options()?.fence_spin_us,
                pipeline_stats: options()?.pipeline_stats,
                ..Default::default()
            },
        )?;
        limits = vk.sibling_limits();
        let mut vk = vk;
        vk.set_mat_vec(options()?.mat_vec);
        vk.set_mat_vecq_layer(options()?.mat_vecq_layer);
        vk.set_coopmat(options()?.coopmat);
        vk.set_split_k(options()?.split_k);
        vk.set_moe_group(options()?.moe_group);
        vk.set_moe_route(options()?.moe_route);
        vk.set_mat_vec_shape(options()?.mat_vec_shape);
        vk.set_mat_vecq_shape(options()?.mat_vecq_shape);
        vk.set_mat_vecq_id_shape(options()?.mat_vecq_id_shape);
        vk.set_attn_split_rows(options()?.attn_split_rows);
        vk.set_attn_min_split(options()?.attn_min_split);
        vk.set_attn_split_vpre(options()?.attn_split_vpre);
        vk.set_attn_split_qb(options()?.attn_split_qb);
        v.push(Box::new(vk));
    }
    v.push(Box::new(CpuBackend::new(model.clone())));
    Ok((v, limits))
}

/// `vkgraph test-ops`: prints one line per case and device and a summary; an error
/// (exit 1) when a case failed or validation reported anything.
fn test_ops(
    op: Option<&str>,
    device: Option<usize>,
    list: bool,
    perf: bool,
    validate: bool,
) -> Result<()> {
    let cases = crate::testops::cases();
    if let Some(o) = op {
        if !cases.iter().any(|c| c.op() == o) {
            return Err(Error::Usage(format!("test-ops: no op `{o}`")));
        }
    }
    let devs: Vec<_> = crate::backend::vulkan::enumerate_devices()?
        .into_iter()
        .filter(|c| device.is_none_or(|d| d == c.index))
        .collect();
    if devs.is_empty() {
        return Err(Error::Usage("test-ops: no such Vulkan device".into()));
    }
    let mut failed = 0;
    for caps in devs {
        let label = format!("Vulkan{}/{}", caps.index, caps.name);
        if list {
            for c in cases.iter().filter(|c| op.is_none_or(|o| c.op() == o)) {
                println!("[{label}] {}", c.name());
            }
            continue;
        }
        let ctx =
            crate::backend::vulkan::VulkanContext::new(&crate::backend::vulkan::ContextOptions {
                device_index: Some(caps.index),
                validation: validate,
                fence_timeout_s: options()?.fence_timeout_s,
                fence_spin_us: options()?.fence_spin_us,
                pipeline_stats: options()?.pipeline_stats,
                ..Default::default()
            })?;
        let (_, f, _) = crate::testops::run(&ctx, &label, op, perf, &mut std::io::stdout().lock());
        failed += f;
        if validate {
            let log = ctx.validation_log();
            if log.errors() + log.warnings() > 0 {
                return Err(Error::Vulkan(format!(
                    "[{label}] validation reported {} error(s), {} warning(s)",
                    log.errors(),
                    log.warnings()
                )));
            }
            match ctx.validation() {
                crate::backend::vulkan::ValidationState::On { sync: true } => println!(
                    "[{label}] {} dispatches validated (synchronization validation on), 0 messages",
                    log.dispatches()
                ),
                v => {
                    return Err(Error::Vulkan(format!(
                        "[{label}] --validate: validation is not fully on ({v:?}); install \
                         vulkan-validationlayers"
                    )))
                }
            }
        }
    }
    if failed > 0 {
        return Err(Error::Usage(format!("test-ops: {failed} case(s) failed")));
    }
    Ok(())
}

/// A session over `make_backends`.
pub fn make_session(
    model: Arc<Model>,
    dev: &DeviceArgs,
    mut opts: SessionOptions,
) -> Result<crate::sched::session::Session> {
    let (b, limits) = make_backends(&model, dev)?;
    opts.limits = limits;
    opts.sched_debug = options()?.sched_debug;
    opts.placement = dev.placement();
    if dev.fit && dev.ngl.is_none() && b.len() > 1 {
        opts.placement = fit_placement(&model, dev, opts.n_ctx)?;
    }
    Ok(crate::sched::session::Session::new(model, b, opts))
}

/// `--fit`: the placement that fits the chosen Vulkan device's largest device-local heap
/// (`sched::fit`), printed.
fn fit_placement(model: &Model, dev: &DeviceArgs, n_ctx: usize) -> Result<crate::sched::Placement> {
    let devs = crate::backend::vulkan::enumerate_devices()?;
    let caps = match dev.device {
        Some(i) => devs.iter().find(|c| c.index == i),
        None => devs
            .iter()
            .find(|c| c.device_type != ash::vk::PhysicalDeviceType::CPU),
    }
    .ok_or_else(|| Error::Usage("--fit: no Vulkan device".into()))?;
    let heap = caps.device_local_bytes().unwrap_or(0);
    let f = crate::sched::fit::fit(model, n_ctx, heap);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let n = model.hp.n_layer;
    if f.gpu_layers > n {
        eprintln!(
            "--fit: everything fits Vulkan{} ({:.2} of {:.2} GiB with a {} context)",
            caps.index,
            gib(f.bytes),
            gib(heap),
            n_ctx
        );
        return Ok(crate::sched::Placement { gpu_layers: None });
    }
    eprintln!(
        "--fit: the last {} of {n} layers on Vulkan{} ({:.2} of {:.2} GiB with a {} context), \
         the rest and the output head on the CPU",
        f.gpu_layers,
        caps.index,
        gib(f.bytes),
        gib(heap),
        n_ctx
    );
    Ok(crate::sched::Placement {
        gpu_layers: Some(f.gpu_layers),
    })
}

/// The default model: SmolLM2-135M-Instruct from the cache `scripts/fetch-smollm2.sh` fills.
pub fn default_model() -> Result<PathBuf> {
    let cache = options()?.cache_dir.clone().ok_or_else(|| {
        Error::Usage("no -m given and neither VKGRAPH_CACHE nor HOME is set".into())
    })?;
    let dir = cache.join("models");
    let found = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("smollm2"))
                && p.extension().is_some_and(|e| e == "gguf")
        })
    });
    found.ok_or_else(|| {
        Error::Usage(format!(
            "no -m given and the default model (SmolLM2-135M) is not in {}; run scripts/fetch-smollm2.sh",
            dir.display()
        ))
    })
}
