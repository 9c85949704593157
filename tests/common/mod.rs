//! Test harness for Vulkan tests: one [`VulkanContext`] per available device, with the
//! Khronos validation layer (and synchronization validation) whenever it is installed.
//!
//! Invariants:
//! - No Vulkan device at all is a test FAILURE, never a skip (CI always has lavapipe).
//! - A missing validation layer (or synchronization validation) is a FAILURE when
//!   `VKGRAPH_REQUIRE_VALIDATION=1` (scripts/test.sh, hence CI, sets it); without it the
//!   tests log it loudly and run unvalidated (the H200, whose Debian layer is too old).
//! - Each case is named after its device, wgpu-style: `[Vulkan/llvmpipe] add(ne0=257,rows=3)`;
//!   a failing case panics with that name.
//! - [`Gpu::finish`] (called by [`for_each_device`]) fails the test if the validation
//!   layer reported any warning or error during it.
#![allow(dead_code)]

pub mod io;

use vkgraph::backend::vulkan::{
    enumerate_devices, Buffer, ContextOptions, MemoryLocation, ValidationState, VulkanContext,
};
use vkgraph::quant::{self, GgmlType};

/// One device under test.
pub struct Gpu {
    pub ctx: VulkanContext,
    /// `Vulkan/llvmpipe`
    pub label: String,
}

impl Gpu {
    /// `[Vulkan/llvmpipe] name`
    pub fn case(&self, name: &str) -> String {
        format!("[{}] {}", self.label, name)
    }

    /// Panics with the case name and the validation messages if any were reported.
    pub fn assert_clean(&self, case: &str) {
        let log = self.ctx.validation_log();
        if log.errors() + log.warnings() > 0 {
            panic!(
                "{}: validation reported {} error(s), {} warning(s):\n{}",
                self.case(case),
                log.errors(),
                log.warnings(),
                log.messages().join("\n")
            );
        }
        eprintln!(
            "{}: validation clean ({} dispatches validated in this process so far)",
            self.case(case),
            log.dispatches()
        );
    }

    /// A device-local buffer filled with `data`.
    pub fn buffer_from(&self, name: &str, data: &[u8]) -> Buffer {
        let b = self
            .ctx
            .create_buffer(data.len().max(4) as u64, MemoryLocation::Device, name)
            .unwrap_or_else(|e| panic!("{}: create {name}: {e}", self.label));
        self.ctx
            .upload(&b, 0, data)
            .unwrap_or_else(|e| panic!("{}: upload {name}: {e}", self.label));
        b
    }

    /// Downloads `n` f32 values at element offset `off` of `b`.
    pub fn read_f32(&self, b: &Buffer, off: usize, n: usize) -> Vec<f32> {
        let mut bytes = vec![0u8; n * 4];
        self.ctx
            .download(b, (off * 4) as u64, &mut bytes)
            .unwrap_or_else(|e| panic!("{}: download {}: {e}", self.label, b.name()));
        f32s(&bytes)
    }
}

/// Options used for every test context, plus `extra` tweaks.
pub fn options(index: usize) -> ContextOptions {
    let env = vkgraph::options::Options::from_env().expect("VKGRAPH_* variables");
    ContextOptions {
        device_index: Some(index),
        validation: true,
        fence_timeout_s: env.fence_timeout_s,
        fence_spin_us: env.fence_spin_us,
        ..Default::default()
    }
}

/// A session over fresh backends: Vulkan device `dev` (validated, then the CPU) or the
/// CPU alone, `n_ctx` cells shared by `n_seq` sequences.
pub fn session(
    m: &std::sync::Arc<vkgraph::model::Model>,
    dev: Option<usize>,
    n_ctx: usize,
    n_seq: usize,
) -> vkgraph::sched::session::Session {
    use vkgraph::backend::Backend;
    let mut b: Vec<Box<dyn Backend>> = Vec::new();
    if let Some(d) = dev {
        b.push(Box::new(
            vkgraph::backend::vulkan::VulkanBackend::new(m.clone(), &options(d)).unwrap(),
        ));
    }
    b.push(Box::new(vkgraph::backend::cpu::CpuBackend::new(m.clone())));
    vkgraph::sched::session::Session::try_new(
        m.clone(),
        b,
        vkgraph::sched::session::SessionOptions {
            n_ctx,
            n_seq,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Opens every Vulkan device (panicking loudly if there is none).
pub fn devices_with(tweak: impl Fn(&mut ContextOptions)) -> Vec<Gpu> {
    let _ = env_logger::builder().is_test(true).try_init();
    let all = enumerate_devices().unwrap_or_else(|e| {
        panic!("NO VULKAN: {e}\n(tests need a Vulkan device; install mesa-vulkan-drivers)")
    });
    assert!(
        !all.is_empty(),
        "NO VULKAN DEVICE: tests need at least one (install mesa-vulkan-drivers for lavapipe)"
    );
    let mut out = Vec::new();
    for caps in all {
        let label = format!("Vulkan/{}", caps.short_name());
        if let Err(e) = caps.usable() {
            eprintln!("[{label}] skipped device {}: {e}", caps.index);
            continue;
        }
        let mut opts = options(caps.index);
        tweak(&mut opts);
        let ctx = VulkanContext::new(&opts)
            .unwrap_or_else(|e| panic!("[{label}] cannot open device {}: {e}", caps.index));
        check_validation(&label, &ctx);
        out.push(Gpu { ctx, label });
    }
    assert!(
        !out.is_empty(),
        "no usable Vulkan device (all were skipped)"
    );
    out
}

/// Reports (or, with `VKGRAPH_REQUIRE_VALIDATION=1`, fails on) a context that runs
/// without the validation layer or without its synchronization validation.
pub fn check_validation(label: &str, ctx: &VulkanContext) {
    let required = std::env::var("VKGRAPH_REQUIRE_VALIDATION").is_ok_and(|v| v == "1");
    let problem = match ctx.validation() {
        ValidationState::On { sync: true } => return,
        ValidationState::On { sync: false } => {
            "validation layer on but SYNCHRONIZATION VALIDATION UNAVAILABLE"
        }
        ValidationState::LayerMissing => {
            "VK_LAYER_KHRONOS_validation NOT INSTALLED (apt install vulkan-validationlayers)"
        }
        ValidationState::Off => "validation was requested but is off",
    };
    if required {
        panic!("[{label}] {problem}; VKGRAPH_REQUIRE_VALIDATION=1 makes that a failure");
    }
    eprintln!("!!! [{label}] {problem}: running WITHOUT full validation");
}

/// Opens every device with the default test options.
pub fn devices() -> Vec<Gpu> {
    devices_with(|_| {})
}

/// Runs `f` once per device and then asserts no validation message was reported.
pub fn for_each_device(test: &str, f: impl Fn(&Gpu)) {
    for gpu in devices() {
        eprintln!("{}", gpu.case(test));
        f(&gpu);
        gpu.ctx.wait_idle().expect("wait idle");
        gpu.assert_clean(test);
    }
}

/// Checks q8_1 blocks a kernel wrote for the values `x` against a CPU q8_1 quantizer
/// written from llama.cpp's definition (d = max|v| / 127, code = round(v / d), s = the
/// block's sum). The kernel computes d and 1 / d with GLSL's division, which the Vulkan
/// spec bounds at 2.5 ulp, not correctly rounded (NVIDIA's d came out 1 ulp off llama.cpp's,
/// H100): so d within 3 ulp of the exact quotient, every code exact except where v / d lies
/// within that error of a rounding tie (then either neighbour), the f32 block sums up to
/// summation order (`codes`: 32 bytes per block, `ds`: (d, s) per block). On a device that
/// divides exactly (lavapipe) every d and code is exact.
pub fn assert_q8_1_blocks(case: &str, x: &[f32], codes: &[u8], ds: &[f32]) {
    // ulp of a positive normal f32.
    let ulp = |v: f32| f32::from_bits(v.to_bits() + 1) - v;
    for (b, blk) in x.chunks(32).enumerate() {
        let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let got_d = ds[2 * b];
        if d == 0.0 {
            assert_eq!(got_d, 0.0, "{case}: block {b} d");
        } else {
            assert!(
                (got_d - d).abs() <= 3.0 * ulp(d),
                "{case}: block {b} d {got_d} vs {d} (more than 3 ulp)"
            );
        }
        for (i, &v) in blk.iter().enumerate() {
            let t = v * id;
            let want = t.round() as i8;
            let got = codes[32 * b + i] as i8;
            // Off by one only next to a tie: |t| ≤ 127, its error ≤ ~6 ulp of 127.
            let near_tie = ((t.abs() - t.abs().trunc()) - 0.5).abs() <= 1e-4;
            assert!(
                got == want || (near_tie && (i16::from(got) - i16::from(want)).abs() == 1),
                "{case}: block {b} value {i} ({v}): code {got}, want {want}"
            );
        }
        let sum: f32 = blk.iter().sum();
        assert!(
            (ds[2 * b + 1] - sum).abs() <= 1e-5 * (1.0 + sum.abs()),
            "{case}: block {b} sum"
        );
    }
}

/// Deterministic pseudo-random f32 values in [-4, 4) (the op suite's generator).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    vkgraph::testops::values(n, seed)
}

/// Little-endian bytes as f32 values.
pub fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Little-endian bytes as u16 values.
pub fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

// ---- kernel-test helpers (vk_mul_mat, vk_get_rows) -----------------------------------

/// Sentinel byte pattern around outputs (a NaN with a recognisable payload).
pub const SENTINEL: u32 = 0x7fc0_dead;
/// Guard elements before and after each output.
pub const GUARD: usize = 67;

/// `rows` rows of `k` values quantized to `ty`, quantized on all cores (rows are
/// independent, so the bytes equal one `quantize` call over everything).
pub fn quantized(ty: GgmlType, rows: usize, k: usize, seed: u64) -> Vec<u8> {
    let vals = values(rows * k, seed);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = rows.div_ceil(threads).max(1);
    let parts: Vec<Vec<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = vals
            .chunks(per * k)
            .map(|c| s.spawn(move || quant::quantize(ty, c).expect("quantize")))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("quantize thread"))
            .collect()
    });
    parts.concat()
}

pub fn words(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// A buffer of `pre` sentinel words, `data`, then `GUARD` sentinel words.
pub fn guarded(gpu: &Gpu, name: &str, pre: usize, data: &[u8]) -> Buffer {
    let mut bytes = Vec::with_capacity(pre * 4 + data.len() + GUARD * 4);
    for _ in 0..pre {
        bytes.extend_from_slice(&SENTINEL.to_le_bytes());
    }
    bytes.extend_from_slice(data);
    for _ in 0..GUARD {
        bytes.extend_from_slice(&SENTINEL.to_le_bytes());
    }
    gpu.buffer_from(name, &bytes)
}

/// Checks the sentinel words `[0, pre)` and `[pre + len, pre + len + GUARD)` of `buf`.
pub fn check_guards(gpu: &Gpu, buf: &Buffer, pre: usize, len: usize, case: &str) {
    let all = gpu.read_f32(buf, 0, pre + len + GUARD);
    for (i, v) in all.iter().enumerate() {
        if (i < pre || i >= pre + len) && v.to_bits() != SENTINEL {
            panic!(
                "{case}: guard word {i} overwritten ({v}); output is words {pre}..{}",
                pre + len
            );
        }
    }
}
