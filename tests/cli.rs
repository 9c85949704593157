//! The CLI end to end on a tiny generated model (DESIGN.md's CLI contract): gen-model,
//! info (per-layer types), dump (decisions and summary), bench (every mode's rows,
//! parsed; no timing assertions), run (text and JSON), and errors as one `error:` line.

use std::path::PathBuf;
use std::process::Command;

fn vkgraph(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
        .args(args)
        .output()
        .expect("run vkgraph");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vkgraph-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn gen(arch: &str, quant: &str) -> String {
    // Tests run concurrently: every call writes its own file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let i = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = tmp(&format!("{arch}-{quant}-{i}.gguf"));
    let (ok, _, err) = vkgraph(&[
        "gen-model",
        "--arch",
        arch,
        "--preset",
        "tiny",
        "--quant",
        quant,
        "-o",
        p.to_str().unwrap(),
    ]);
    assert!(ok, "gen-model failed: {err}");
    p.to_str().unwrap().to_string()
}

#[test]
fn info_shows_v_type_differing_in_q4_k_m() {
    let m = gen("llama", "q4_k_m");
    let (ok, out, err) = vkgraph(&["info", &m]);
    assert!(ok, "{err}");
    // llama-quantize's q4_k_m gives attn_v q6_K in layer 1 of 2 (use_more_bits).
    assert!(out.contains("| 0 | q4_K | q4_K | q4_K |"), "{out}");
    assert!(out.contains("| 1 | q4_K | q4_K | q6_K |"), "{out}");
}

#[test]
fn dump_explains_decisions() {
    let m = gen("qwen3", "q2_k");
    let (ok, out, err) = vkgraph(&["dump", "-m", &m, "--qkv", "fuse", "-n", "3", "--cpu"]);
    assert!(ok, "{err}");
    assert!(out.contains("## SPLIT #0: CPU"), "{out}");
    assert!(
        out.contains("partial blk.0 attn_qk = attn_q + attn_k (q2_K)"),
        "{out}"
    );
    assert!(out.contains("types differ"), "{out}");
    // auto (= group where types differ): Q/K/V of the q2_k mix as one grouped node.
    let (ok, out, err) = vkgraph(&["dump", "-m", &m, "--qkv", "auto", "-n", "3", "--cpu"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "grouped blk.0 attn_qkv = attn_q (q2_K) + attn_k (q2_K) + attn_v (q3_K) — 1 dispatch \
             instead of 3"
        ),
        "{out}"
    );
    for mode in ["off", "fuse", "reorder", "group", "auto"] {
        assert!(
            out.contains(&format!("| {mode} | ")),
            "summary lacks {mode}: {out}"
        );
    }
}

#[test]
fn bench_reports_every_mode() {
    let m = gen("llama", "q4_0");
    let (ok, out, err) = vkgraph(&[
        "bench",
        "-m",
        &m,
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "1",
        "--qkv",
        "off,fuse,reorder,auto",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("bench -o json is JSON");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8, "4 modes × (pp8, tg4): {out}");
    for mode in ["off", "fuse", "reorder", "auto"] {
        for test in ["pp8", "tg4"] {
            let r = rows
                .iter()
                .find(|r| r["qkv"] == mode && r["test"] == test)
                .unwrap_or_else(|| panic!("no {mode} {test} row"));
            let ts = r["avg_ts"].as_f64().unwrap();
            assert!(ts.is_finite() && ts > 0.0, "{mode} {test}: {ts}");
            assert_eq!(r["samples_ts"].as_array().unwrap().len(), 1);
        }
    }
    // --sampled adds tgN+s (the default sampler picks each token).
    let (ok, out, err) = vkgraph(&[
        "bench",
        "-m",
        &m,
        "-p",
        "0",
        "-n",
        "3",
        "-r",
        "1",
        "--qkv",
        "auto",
        "--sampled",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("bench -o json is JSON");
    let tests: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, ["tg3", "tg3+s"], "{out}");
    let (ok, md, err) = vkgraph(&[
        "bench", "-m", &m, "-p", "8", "-n", "0", "-r", "1", "--qkv", "off,auto", "--cpu",
    ]);
    assert!(ok, "{err}");
    assert!(
        md.contains("| model | size | params | backend | qkv | test | t/s |"),
        "{md}"
    );
    assert!(
        md.contains("| test | t/s off | t/s auto | speedup |"),
        "{md}"
    );
    // --fusion as an A/B list: a compare table per level, and CSV with `fusion` appended
    // (existing columns keep their positions).
    let (ok, md, err) = vkgraph(&[
        "bench",
        "-m",
        &m,
        "-p",
        "0",
        "-n",
        "3",
        "-r",
        "1",
        "--qkv",
        "auto",
        "--fusion",
        "none,layer",
        "--cpu",
    ]);
    assert!(ok, "{err}");
    assert!(md.contains("| auto fusion=none | tg3 |"), "{md}");
    assert!(
        md.contains("| t/s auto fusion=none | t/s auto fusion=layer | speedup |"),
        "{md}"
    );
    let (ok, csv, err) = vkgraph(&[
        "bench", "-m", &m, "-p", "0", "-n", "3", "-r", "1", "--qkv", "auto", "--fusion", "ops",
        "--cpu", "-o", "csv",
    ]);
    assert!(ok, "{err}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("model,size,params,backend,qkv,test,avg_ts,stddev_ts,fusion"),
        "{csv}"
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((row[4], row[5], row[8]), ("auto", "tg3", "ops"), "{csv}");
    let (ok, _, err) = vkgraph(&["bench", "-m", &m, "--fusion", "most", "--cpu"]);
    assert!(!ok && err.contains("unknown fusion level `most`"), "{err}");
    // --profile with depths: one tg step profiled after each depth's cached tokens (its
    // position named: the depth, the warm-up step and the eight timed wall steps), on the
    // Vulkan device (the CPU has no timestamps).
    let (ok, md, err) = vkgraph(&[
        "bench",
        "-m",
        &m,
        "-p",
        "0",
        "-n",
        "2",
        "-r",
        "1",
        "--qkv",
        "auto",
        "-d",
        "0,40",
        "--profile",
        "--device",
        "0",
    ]);
    assert!(ok, "{err}");
    for (pos, test) in [(25, "tg2"), (49, "tg2 @ d40")] {
        assert!(
            md.contains(&format!("tg step at position {pos}, qkv=auto")),
            "no profile at position {pos}: {md}"
        );
        assert!(md.contains(&format!("| {test} |")), "no {test} row: {md}");
    }
    assert!(
        md.contains("ROPE_ATTENTION") || md.contains("ATTENTION"),
        "{md}"
    );
}

#[test]
fn run_prints_text_json_and_speed() {
    let m = gen("qwen3", "q8_0");
    let (ok, _, err) = vkgraph(&[
        "run",
        "-m",
        &m,
        "-p",
        "The capital",
        "-n",
        "4",
        "--temp",
        "0",
        "--cpu",
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("prompt:") && err.contains("t/s"),
        "no speed line: {err}"
    );
    let (ok, out, err) = vkgraph(&[
        "run",
        "-m",
        &m,
        "-p",
        "Hello",
        "-n",
        "3",
        "--temp",
        "0",
        "--n-probs",
        "5",
        "--json",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let top = l["top"].as_array().unwrap();
        assert_eq!(top.len(), 5);
        // Greedy: the generated token is the most likely one.
        assert_eq!(l["id"], top[0]["id"]);
        assert!(top
            .windows(2)
            .all(|w| w[0]["logprob"].as_f64() >= w[1]["logprob"].as_f64()));
    }
}

/// `run --context-shift` generates past the context (the cache shifted twice or more;
/// `RUST_LOG=info` shows each shift), on the CPU and on Vulkan device 0; without the
/// flag the same run is refused up front, naming the flag.
#[test]
fn context_shift_generates_past_the_context() {
    let m = gen("llama", "q8_0");
    for dev in [&["--cpu"][..], &["--device", "0"]] {
        let mut args = vec![
            "run", "-m", &m, "-p", "Hello", "-n", "40", "-c", "16", "--temp", "0", "--json",
        ];
        args.extend_from_slice(dev);
        let (ok, _, err) = vkgraph(&args);
        assert!(!ok && err.contains("--context-shift"), "{dev:?}: {err}");
        args.extend_from_slice(&["--context-shift", "--keep", "2"]);
        let out = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
            .args(&args)
            .env("RUST_LOG", "vkgraph=info")
            .output()
            .expect("run vkgraph");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{dev:?}: {err}");
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        let shifts = err.matches("context shift: keep 2").count();
        assert!(
            lines == 40 && shifts >= 2,
            "{dev:?}: {lines} tokens, {shifts} shifts: {err}"
        );
    }
}

/// `--json` token texts are the pieces of the output stream: concatenated after the
/// prompt they give exactly the plain run's text (SentencePiece's leading spaces kept).
#[test]
fn json_texts_join_to_the_plain_output() {
    for arch in ["llama", "qwen3"] {
        let m = gen(arch, "q8_0");
        let base = [
            "run",
            "-m",
            &m,
            "-p",
            "Hello world",
            "-n",
            "6",
            "--temp",
            "0",
            "--cpu",
        ];
        let (ok, plain, err) = vkgraph(&base);
        assert!(ok, "{err}");
        let mut args = base.to_vec();
        args.push("--json");
        let (ok, out, err) = vkgraph(&args);
        assert!(ok, "{err}");
        let joined: String = out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["text"].as_str().expect("text").to_string()
            })
            .collect();
        assert_eq!(
            format!("Hello world{joined}").trim_end(),
            plain.trim_end(),
            "{arch}: JSON texts {joined:?}"
        );
    }
}

#[test]
fn errors_are_one_line() {
    let bad = tmp("bad.gguf");
    std::fs::write(&bad, b"GGUF\x09\x00\x00\x00garbage").unwrap();
    for args in [
        vec!["info", bad.to_str().unwrap()],
        vec!["run", "-m", bad.to_str().unwrap(), "-p", "x"],
        vec!["run", "-m", "/nonexistent.gguf", "-p", "x"],
        vec!["gen-model", "--preset", "huge", "-o", "/tmp/x.gguf"],
        vec!["dump", "-m", bad.to_str().unwrap(), "--qkv", "sideways"],
    ] {
        let (ok, out, err) = vkgraph(&args);
        assert!(!ok, "{args:?} succeeded: {out}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" WARN ")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The README's main job: the default model (SmolLM2-135M-Instruct, fetched by
/// scripts/fetch-smollm2.sh, which scripts/test.sh runs) continues the prompt with " Paris",
/// on the CPU, by default (the CPU backend where the only Vulkan device is a CPU driver,
/// else the first GPU) and on Vulkan device 0 asked for by index.
#[test]
fn default_model_knows_paris() {
    for dev in [&["--cpu"][..], &[][..], &["--device", "0"][..]] {
        let mut args = vec![
            "run",
            "-p",
            "The capital of France is",
            "-n",
            "3",
            "--temp",
            "0",
        ];
        args.extend_from_slice(dev);
        let (ok, out, err) = vkgraph(&args);
        assert!(
            ok,
            "{args:?}: {err} (run scripts/fetch-smollm2.sh if the model is missing)"
        );
        assert!(
            out.starts_with("The capital of France is Paris"),
            "{args:?}: {out}"
        );
    }
    let (ok, out, err) = vkgraph(&[
        "run",
        "-p",
        "What is the capital of France?",
        "--chat",
        "-n",
        "12",
        "--temp",
        "0",
        "--cpu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Paris"), "--chat: {out}");
}

/// `vkgraph dump | head -1` ends quietly: a closed stdout is not a panic.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let m = gen("llama", "q4_0");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
        .args(["dump", "-m", &m, "--cpu", "-n", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once: the model loads first, so dump's first write meets a
    // closed pipe (without the SIGPIPE default, println! panics on EPIPE).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Each option appears once in each subcommand's help (bench's `--qkv` takes the list of
/// modes; the single-mode `--qkv` of run and dump is not flattened into it).
#[test]
fn help_lists_each_option_once() {
    for sub in ["bench", "run", "dump"] {
        let (ok, out, err) = vkgraph(&[sub, "--help"]);
        assert!(ok, "{sub} --help: {err}");
        let mut seen = std::collections::HashSet::new();
        // The option lines only (the usage line repeats required options).
        let options = out.lines().filter(|l| l.trim_start().starts_with('-'));
        for word in options
            .flat_map(|l| l.split_whitespace().take(3))
            .filter(|w| w.starts_with("--"))
        {
            let opt = word.trim_end_matches(',');
            assert!(
                seen.insert(opt.to_string()),
                "{sub} --help lists {opt} twice:\n{out}"
            );
        }
    }
}

/// The dump says which kernel each Vulkan matmul and attention takes and why: the float
/// mat-vec by default on lavapipe (its dot products are not accelerated), the integer-dot
/// one with `VKGRAPH_MMVQ=1`, naming the kernel whose epilogue writes the q8_1 input.
#[test]
fn dump_names_each_kernel_and_why() {
    let m = gen("qwen3", "q4_0");
    let args = ["dump", "-m", m.as_str(), "--qkv", "auto", "--device", "0"];
    let (ok, out, err) = vkgraph(&args);
    assert!(ok, "{err}");
    assert!(out.contains("## KERNELS (Vulkan0)"), "{out}");
    // Decode-layer fusion folds attn_norm into the QKV mat-vec's prologue.
    assert!(
        out.contains("RMS_NORM_MUL_MAT_FUSED attn_qkv-0")
            && out.contains(": mul_mat_vec_layer (float mat-vec; RMS-norm prologue)"),
        "{out}"
    );
    assert!(
        out.contains("folded attn_norm-0 (RMS_NORM_MUL) into the prologue of blk.0 attn_qkv"),
        "{out}"
    );
    assert!(out.contains("ATTENTION kqv_out-0"), "{out}");
    // The integer-dot path takes the same folds in its own kernel (the default)...
    let o = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
        .args(args)
        .env("VKGRAPH_MMVQ", "1")
        .output()
        .expect("run vkgraph");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // (each reads a q8_1 copy its producer's epilogue wrote, and writes the next one)
    assert!(
        out.contains(
            "RMS_NORM_MUL_MAT_SWIGLU ffn_swiglu-0 q4_0 256x1024 n=1: mul_mat_vecq_layer (int8 \
             dot products; q8_1 of x·nw and its sums of squares written by the MUL_MAT_ADD \
             epilogue; its q8_1 epilogue quantizes the output for the next int8 matmul; \
             RMS-norm prologue, SwiGLU epilogue)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "MUL_MAT_ADD ffn_inp-0 q4_0 512x256 n=1: mul_mat_vecq_layer (int8 dot products; \
             q8_1 x written by the ROPE_ATTENTION epilogue;"
        ),
        "{out}"
    );
    // ...and with VKGRAPH_MMVQ_LAYER=0 keeps them apart, their kernels writing the q8_1
    // copies the integer-dot mat-vec reads.
    let o = Command::new(env!("CARGO_BIN_EXE_vkgraph"))
        .args(args)
        .env("VKGRAPH_MMVQ", "1")
        .env("VKGRAPH_MMVQ_LAYER", "0")
        .output()
        .expect("run vkgraph");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains(
            "mul_mat_vecq (int8 dot products; q8_1 x written by the RMS_NORM_MUL epilogue)"
        ),
        "{out}"
    );
    assert!(out.contains("written by the SWIGLU epilogue"), "{out}");
    assert!(
        out.contains("its fused form is off (VKGRAPH_MMVQ_LAYER=0)"),
        "{out}"
    );
}

/// `--fit` picks the placement from the device's memory and says what it chose; `--lora`
/// takes an adapter from `gen-lora` and changes the text; a non-adapter `--lora` is a
/// one-line typed error.
#[test]
fn fit_and_lora_flags() {
    let m = gen("qwen3", "q4_0");
    let (ok, _, err) = vkgraph(&[
        "run", "-m", &m, "--device", "0", "--fit", "-p", "hi", "-n", "2", "--temp", "0",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("--fit: everything fits Vulkan0"), "{err}");
    let ad = tmp("cli-lora.gguf");
    let ad_s = ad.to_str().unwrap();
    let (ok, _, err) = vkgraph(&["gen-lora", "-m", &m, "-o", ad_s, "--rank", "16"]);
    assert!(ok, "{err}");
    let (ok1, base, e1) = vkgraph(&[
        "run",
        "-m",
        &m,
        "--cpu",
        "-p",
        "hello world",
        "-n",
        "8",
        "--temp",
        "0",
    ]);
    let (ok2, lora, e2) = vkgraph(&[
        "run",
        "-m",
        &m,
        "--cpu",
        "--lora",
        ad_s,
        "--lora-scale",
        "4",
        "-p",
        "hello world",
        "-n",
        "8",
        "--temp",
        "0",
    ]);
    assert!(ok1 && ok2, "{e1}\n{e2}");
    assert_ne!(base, lora, "the adapter changed nothing");
    let (ok, _, err) = vkgraph(&["run", "-m", &m, "--cpu", "--lora", &m, "-p", "x", "-n", "1"]);
    assert!(!ok && err.contains("not an adapter"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
