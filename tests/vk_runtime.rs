//! Vulkan runtime tests, run once per available device (see tests/common): buffers,
//! the simple kernels against plain Rust loops (exact), barriers, timestamps, caps,
//! error paths, and zero validation messages.

mod common;

use common::{devices_with, f32s, for_each_device, u16s, values, Gpu};
use half::f16;
use vkgraph::backend::vulkan::{describe_devices, dispatch, Buffer, MemoryLocation, ShaderId};

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

#[test]
fn caps_sanity() {
    for_each_device("caps", |gpu| {
        let c = gpu.ctx.caps();
        let case = gpu.case("caps");
        assert!(
            c.subgroup_size.is_power_of_two(),
            "{case}: subgroup {}",
            c.subgroup_size
        );
        if let Some((lo, hi)) = c.subgroup_size_control {
            assert!(
                lo.is_power_of_two() && hi.is_power_of_two() && lo <= hi,
                "{case}"
            );
            assert!(lo <= c.subgroup_size && c.subgroup_size <= hi, "{case}");
        }
        assert!(c.max_storage_buffer_range > 0, "{case}");
        assert!(c.max_memory_allocation_size > 0, "{case}");
        assert!(
            c.min_storage_buffer_offset_alignment.is_power_of_two(),
            "{case}"
        );
        // Vulkan's required minimums.
        assert!(c.max_push_constants_size >= 128, "{case}");
        assert!(c.max_compute_shared_memory_size >= 16384, "{case}");
        assert!(
            c.max_compute_work_group_count.iter().all(|&n| n >= 65535),
            "{case}"
        );
        assert!(c.max_compute_work_group_invocations >= 128, "{case}");
        if let Some(p) = c.timestamp_period {
            assert!(p > 0.0 && c.timestamp_valid_bits > 0, "{case}");
        }
        for s in &c.cooperative_matrix {
            assert!(s.m > 0 && s.n > 0 && s.k > 0, "{case}: {s}");
        }
        let text = describe_devices().expect("describe_devices");
        assert!(
            text.contains(&c.name),
            "{case}: describe_devices lacks the name:\n{text}"
        );
        eprintln!("{text}");
    });
}

/// Uploads at odd sizes/offsets and reads back, checking neighbours stay untouched.
fn round_trip(gpu: &Gpu, location: MemoryLocation) {
    for &size in &[1usize, 3, 4, 5, 255, 4097, (1 << 20) + 3] {
        for &offset in &[0usize, 1, 7, 13] {
            let case = gpu.case(&format!(
                "round_trip({location:?},size={size},offset={offset})"
            ));
            let total = offset + size + 5;
            let buf = gpu
                .ctx
                .create_buffer(total as u64, location, "rt")
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let background = bytes(total, 99);
            gpu.ctx.upload(&buf, 0, &background).unwrap();
            let data = bytes(size, size as u64 * 31 + offset as u64);
            gpu.ctx.upload(&buf, offset as u64, &data).unwrap();
            let mut back = vec![0u8; size];
            gpu.ctx.download(&buf, offset as u64, &mut back).unwrap();
            assert!(back == data, "{case}: data differs");
            let mut all = vec![0u8; total];
            gpu.ctx.download(&buf, 0, &mut all).unwrap();
            let mut expect = background.clone();
            expect[offset..offset + size].copy_from_slice(&data);
            assert!(all == expect, "{case}: neighbouring bytes changed");
        }
    }
}

#[test]
fn buffer_round_trip() {
    for_each_device("buffer_round_trip", |gpu| {
        round_trip(gpu, MemoryLocation::Device);
        round_trip(gpu, MemoryLocation::Readback);
    });
}

#[test]
fn buffer_round_trip_staging() {
    // Forces the staging path even where memory is host-visible (lavapipe), including a
    // transfer of four staging chunks (16 MiB each), so the upload ring of three wraps.
    for gpu in devices_with(|o| o.force_staging = true) {
        round_trip(&gpu, MemoryLocation::Device);
        let n = 3 * (16 << 20) + 12345;
        let data = bytes(n, 7);
        let buf = gpu.buffer_from("big", &data);
        let mut back = vec![0u8; n];
        gpu.ctx.download(&buf, 0, &mut back).unwrap();
        assert!(back == data, "{}", gpu.case("staging(size=48MiB+12345)"));
        gpu.ctx.wait_idle().unwrap();
        gpu.assert_clean("buffer_round_trip_staging");
    }
}

#[test]
fn upload_many_streams_tensors_through_one_ring() {
    // Weights upload as one run (VulkanContext::upload_many): jobs of odd sizes into
    // several buffers and offsets, one spanning two staging chunks, all through the ring
    // of three without a wait per job; `done` reports each job's bytes in order.
    for gpu in devices_with(|o| o.force_staging = true) {
        let case = gpu.case("upload_many");
        let sizes = [5usize, (16 << 20) + 777, 4097, 1, 300_000];
        let bufs: Vec<Buffer> = (0..3)
            .map(|i| {
                gpu.ctx
                    .create_buffer(40 << 20, MemoryLocation::Device, &format!("um{i}"))
                    .unwrap()
            })
            .collect();
        let datas: Vec<Vec<u8>> = sizes.iter().map(|&n| bytes(n, n as u64 + 3)).collect();
        // Job j: buffer j % 3, after the previous job in that buffer plus 13 bytes.
        let mut at = [0u64; 3];
        let mut jobs = Vec::new();
        for (j, d) in datas.iter().enumerate() {
            let b = j % 3;
            jobs.push((&bufs[b], at[b] + 13, d.as_slice()));
            at[b] += 13 + d.len() as u64;
        }
        let mut reported = Vec::new();
        gpu.ctx
            .upload_many(&jobs, |n| reported.push(n))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let want: Vec<u64> = sizes.iter().map(|&n| n as u64).collect();
        assert_eq!(reported, want, "{case}: progress per job");
        for (j, &(buf, off, data)) in jobs.iter().enumerate() {
            let mut back = vec![0u8; data.len()];
            gpu.ctx.download(buf, off, &mut back).unwrap();
            assert!(back == data, "{case}: job {j} differs");
        }
        // A job out of its buffer's range is refused before anything is copied.
        let small = gpu
            .ctx
            .create_buffer(16, MemoryLocation::Device, "small")
            .unwrap();
        let bad = [
            (&bufs[0], 0u64, datas[0].as_slice()),
            (&small, 8, datas[3].as_slice()),
            (&small, 12, datas[2].as_slice()),
        ];
        let err = gpu.ctx.upload_many(&bad, |_| {}).expect_err("out of range");
        assert!(err.to_string().contains("small"), "{case}: {err}");
        gpu.ctx.wait_idle().unwrap();
        gpu.assert_clean(&case);
    }
}

#[test]
fn buffer_errors() {
    for_each_device("buffer_errors", |gpu| {
        let c = gpu.ctx.caps();
        let too_big = c.max_storage_buffer_range.min(c.max_memory_allocation_size) + 1;
        let err = gpu
            .ctx
            .create_buffer(too_big, MemoryLocation::Device, "huge")
            .expect_err("buffer above the device limits must be rejected")
            .to_string();
        assert!(
            err.contains("huge") && err.contains(&too_big.to_string()),
            "{}: unclear error: {err}",
            gpu.case("too_large")
        );
        assert!(gpu
            .ctx
            .create_buffer(0, MemoryLocation::Device, "empty")
            .is_err());
        let b = gpu
            .ctx
            .create_buffer(16, MemoryLocation::Device, "small")
            .unwrap();
        assert!(
            gpu.ctx.upload(&b, 10, &[0u8; 7]).is_err(),
            "upload past the end"
        );
        let mut out = [0u8; 17];
        assert!(
            gpu.ctx.download(&b, 0, &mut out).is_err(),
            "download past the end"
        );
        // Dispatch misuse is an error, not UB: wrong binding count, bad push size.
        let mut rec = gpu.ctx.recorder().unwrap();
        rec.begin().unwrap();
        assert!(rec
            .dispatch(ShaderId::scale, &[], &[b.whole()], &[0u8; 32], [1, 1, 1])
            .is_err());
        assert!(rec
            .dispatch(
                ShaderId::scale,
                &[],
                &[b.whole(), b.whole()],
                &[0u8; 8],
                [1, 1, 1]
            )
            .is_err());
        assert!(dispatch::scale::scale(&mut rec, b.whole(), b.whole(), 5, 1.0, 0.0).is_err());
        assert!(
            dispatch::scale::scale(&mut rec, b.range(2, 8), b.whole(), 1, 1.0, 0.0).is_err(),
            "misaligned f32 range"
        );
        rec.submit_and_wait().unwrap();
    });
}

fn r(buf: &Buffer, off: usize, n: usize) -> vkgraph::backend::vulkan::BufferRange<'_> {
    buf.range(off as u64 * 4, n as u64 * 4)
}

fn binary_case(gpu: &Gpu, op: &str, ne0: u32, rows_a: u32, rows_b: u32, offs: [usize; 3]) {
    let case = gpu.case(&format!(
        "{op}(ne0={ne0},rows={rows_a},rows_b={rows_b},offs={offs:?})"
    ));
    let (na, nb) = ((ne0 * rows_a) as usize, (ne0 * rows_b) as usize);
    let a = values(offs[0] + na, 1);
    let b = values(offs[1] + nb, 2);
    let d0 = values(offs[2] + na + 3, 3);
    let (ba, bb, bd) = (
        gpu.buffer_from("a", &f32_bytes(&a)),
        gpu.buffer_from("b", &f32_bytes(&b)),
        gpu.buffer_from("dst", &f32_bytes(&d0)),
    );
    let mut rec = gpu.ctx.recorder().unwrap();
    rec.begin().unwrap();
    let f = if op == "add" {
        dispatch::binary::add
    } else {
        dispatch::binary::mul
    };
    f(
        &mut rec,
        r(&ba, offs[0], na),
        r(&bb, offs[1], nb),
        r(&bd, offs[2], na),
        ne0,
        rows_a,
        rows_b,
    )
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    rec.submit_and_wait().unwrap();
    let got = gpu.read_f32(&bd, 0, d0.len());
    let mut want = d0.clone();
    for row in 0..rows_a as usize {
        for i in 0..ne0 as usize {
            let x = a[offs[0] + row * ne0 as usize + i];
            let y = b[offs[1] + (row % rows_b as usize) * ne0 as usize + i];
            want[offs[2] + row * ne0 as usize + i] = if op == "add" { x + y } else { x * y };
        }
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{case}: element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn binary_ops() {
    for_each_device("binary", |gpu| {
        for op in ["add", "mul"] {
            binary_case(gpu, op, 1, 1, 1, [0, 0, 0]);
            binary_case(gpu, op, 257, 3, 3, [0, 0, 0]);
            binary_case(gpu, op, 257, 3, 1, [5, 3, 1]);
            binary_case(gpu, op, 1000, 7, 1, [0, 0, 0]);
            binary_case(gpu, op, 4096, 5, 5, [1, 2, 3]);
            binary_case(gpu, op, 33, 12, 4, [0, 7, 0]);
        }
    });
}

/// A reusable recording owns what it binds: replayed after every other handle of its
/// input buffer is gone (as when the executor re-plans and replaces its buffers), it still
/// runs on live memory — under validation, a destroyed buffer would be an error.
#[test]
fn replay_outlives_the_callers_buffers() {
    for_each_device("replay_after_drop", |gpu| {
        let n = 1000usize;
        let a = values(n, 9);
        let src = gpu.buffer_from("src", &f32_bytes(&a));
        let out = gpu.buffer_from("out", &vec![0u8; n * 4]);
        let mut rec = gpu.ctx.recorder().unwrap();
        rec.set_reusable(true);
        rec.begin().unwrap();
        dispatch::scale::scale(&mut rec, src.whole(), out.whole(), n as u64, 2.0, 0.0).unwrap();
        rec.submit_and_wait().unwrap();
        drop(src);
        gpu.ctx.upload(&out, 0, &vec![0u8; n * 4]).unwrap();
        rec.resubmit().unwrap();
        rec.wait().unwrap();
        let got = gpu.read_f32(&out, 0, n);
        for i in 0..n {
            assert_eq!(got[i], a[i] * 2.0, "{}: replay[{i}]", gpu.label);
        }
    });
}

#[test]
fn scale_op() {
    for_each_device("scale", |gpu| {
        for &n in &[1usize, 255, 256, 257, 100_003] {
            let case = gpu.case(&format!("scale(n={n})"));
            let a = values(n + 2, n as u64);
            let buf = gpu.buffer_from("a", &f32_bytes(&a));
            let out = gpu.buffer_from("out", &vec![0u8; (n + 2) * 4]);
            let mut rec = gpu.ctx.recorder().unwrap();
            rec.begin().unwrap();
            // Out of place from element 1, and in place over the whole buffer.
            dispatch::scale::scale(
                &mut rec,
                buf.range(4, n as u64 * 4),
                out.whole(),
                n as u64,
                1.5,
                -0.25,
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.barrier().unwrap(); // WAR: the second dispatch overwrites what the first reads
            dispatch::scale::scale(
                &mut rec,
                buf.whole(),
                buf.whole(),
                (n + 2) as u64,
                -3.0,
                0.0,
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.submit_and_wait().unwrap();
            let got = gpu.read_f32(&out, 0, n + 2);
            // `a * s + b` rounded once (a GPU may contract it to an FMA, as NVIDIA's
            // compiler does) or twice: either result, bit for bit, and nothing else.
            let ok = |got: f32, a: f32, s: f32, b: f32| {
                got.to_bits() == (a * s + b).to_bits() || got.to_bits() == a.mul_add(s, b).to_bits()
            };
            for i in 0..n + 2 {
                if i < n {
                    assert!(
                        ok(got[i], a[i + 1], 1.5, -0.25),
                        "{case}: out[{i}] {} vs {} (or fused {})",
                        got[i],
                        a[i + 1] * 1.5 + -0.25,
                        a[i + 1].mul_add(1.5, -0.25)
                    );
                } else {
                    assert_eq!(
                        got[i].to_bits(),
                        0,
                        "{case}: out[{i}] past the range written"
                    );
                }
            }
            let got = gpu.read_f32(&buf, 0, n + 2);
            for i in 0..n + 2 {
                assert!(ok(got[i], a[i], -3.0, 0.0), "{case}: in-place[{i}]");
            }
        }
    });
}

/// f16 of `x` rounded to nearest-even and toward zero (Vulkan leaves the mode open).
fn f16_candidates(x: f32) -> [u16; 2] {
    let rne = f16::from_f32(x);
    let rtz = if f32::from(rne).abs() > x.abs() {
        f16::from_bits(rne.to_bits() - 1)
    } else {
        rne
    };
    [rne.to_bits(), rtz.to_bits()]
}

/// `dst` (filled with 0xAB first) holds `want` bit for bit after `pad` bytes, and its
/// `pad` bytes on either side are untouched.
fn assert_exact_copy(
    gpu: &Gpu,
    case: &str,
    dst: &vkgraph::backend::vulkan::Buffer,
    pad: usize,
    want: &[f32],
) {
    let len = want.len() * 4;
    let mut raw = vec![0u8; len + 2 * pad];
    gpu.ctx.download(dst, 0, &mut raw).unwrap();
    assert!(
        raw[..pad]
            .iter()
            .chain(&raw[pad + len..])
            .all(|&b| b == 0xAB),
        "{case}: neighbours"
    );
    let got = f32s(&raw[pad..pad + len]);
    assert!(
        got.iter()
            .zip(want)
            .all(|(g, w)| g.to_bits() == w.to_bits()),
        "{case}"
    );
}

#[test]
fn copy_ops() {
    for_each_device("copy", |gpu| {
        for &n in &[1usize, 7, 256, 1001] {
            let mut src = values(n + 1, n as u64 + 5);
            src[1] = 1.0 / 3.0; // inexact in f16
            if n > 3 {
                src[3] = 65504.0; // f16 max
                src[4] = -0.0;
            }
            let bsrc = gpu.buffer_from("src", &f32_bytes(&src));

            let case = gpu.case(&format!("copy_f32_f32(n={n})"));
            let dst = gpu.buffer_from("dst32", &vec![0xAB; (n + 2) * 4]);
            let mut rec = gpu.ctx.recorder().unwrap();
            rec.begin().unwrap();
            dispatch::copy::copy_f32_f32(
                &mut rec,
                bsrc.range(4, n as u64 * 4),
                dst.range(4, n as u64 * 4),
                n as u64,
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.submit_and_wait().unwrap();
            assert_exact_copy(gpu, &case, &dst, 4, &src[1..]);

            // 16 bytes per invocation, at a 16-byte offset, neighbours untouched.
            let n4 = n.div_ceil(4);
            let case = gpu.case(&format!("copy_vec4(n={n4})"));
            let src4 = values(4 * (n4 + 1), n as u64 + 9);
            let bsrc4 = gpu.buffer_from("src4", &f32_bytes(&src4));
            let dst = gpu.buffer_from("dst4", &vec![0xAB; (n4 + 2) * 16]);
            rec.begin().unwrap();
            dispatch::copy::copy_vec4(
                &mut rec,
                bsrc4.range(16, n4 as u64 * 16),
                dst.range(16, n4 as u64 * 16),
                n4 as u64,
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.submit_and_wait().unwrap();
            assert_exact_copy(gpu, &case, &dst, 16, &src4[4..]);

            if !gpu.ctx.caps().storage_16bit {
                eprintln!(
                    "{}: no 16-bit storage, copy_f32_f16 not run",
                    gpu.case("copy_f32_f16")
                );
                continue;
            }
            // Odd f16 element offset (byte offset 2) and untouched neighbours.
            let case = gpu.case(&format!("copy_f32_f16(n={n},dst_off=1)"));
            let dst = gpu.buffer_from("dst16", &vec![0xCD; (n + 2) * 2]);
            rec.begin().unwrap();
            dispatch::copy::copy_f32_f16(
                &mut rec,
                bsrc.range(4, n as u64 * 4),
                dst.range(2, n as u64 * 2),
                n as u64,
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.submit_and_wait().unwrap();
            let mut raw = vec![0u8; (n + 2) * 2];
            gpu.ctx.download(&dst, 0, &mut raw).unwrap();
            assert!(
                raw[..2] == [0xCD; 2] && raw[(n + 1) * 2..] == [0xCD; 2],
                "{case}: neighbours"
            );
            let got = u16s(&raw[2..(n + 1) * 2]);
            for (i, (&g, &x)) in got.iter().zip(&src[1..]).enumerate() {
                assert!(
                    f16_candidates(x).contains(&g),
                    "{case}: element {i}: {x} -> {:?} (0x{g:04x})",
                    f16::from_bits(g)
                );
            }
        }
    });
}

#[test]
fn barrier_chain_and_timestamps() {
    for_each_device("barrier_chain", |gpu| {
        let n = 3000usize;
        let a = values(n, 11);
        let b = values(n, 12);
        let (ba, bb) = (
            gpu.buffer_from("a", &f32_bytes(&a)),
            gpu.buffer_from("b", &f32_bytes(&b)),
        );
        let tmp = gpu
            .ctx
            .create_buffer(n as u64 * 4, MemoryLocation::Device, "tmp")
            .unwrap();
        let out = gpu
            .ctx
            .create_buffer(n as u64 * 4, MemoryLocation::Device, "out")
            .unwrap();
        let mut rec = gpu.ctx.recorder().unwrap();
        rec.begin().unwrap();
        rec.timestamp("start").unwrap();
        // tmp = a + b ; barrier ; out = tmp * 2 ; barrier ; copy out -> tmp ; barrier ; tmp *= b
        dispatch::binary::add(
            &mut rec,
            ba.whole(),
            bb.whole(),
            tmp.whole(),
            n as u32,
            1,
            1,
        )
        .unwrap();
        rec.barrier().unwrap();
        rec.timestamp("add").unwrap();
        dispatch::scale::scale(&mut rec, tmp.whole(), out.whole(), n as u64, 2.0, 0.0).unwrap();
        rec.barrier().unwrap();
        rec.timestamp("scale").unwrap();
        rec.copy_buffer(out.whole(), tmp.whole()).unwrap();
        rec.barrier().unwrap();
        dispatch::binary::mul(
            &mut rec,
            tmp.whole(),
            bb.whole(),
            tmp.whole(),
            n as u32,
            1,
            1,
        )
        .unwrap();
        rec.timestamp("end").unwrap();
        assert_eq!((rec.dispatch_count(), rec.barrier_count()), (3, 3));
        rec.submit_and_wait().unwrap();
        let got = gpu.read_f32(&tmp, 0, n);
        for i in 0..n {
            let want = ((a[i] + b[i]) * 2.0 + 0.0) * b[i];
            assert!(
                got[i].to_bits() == want.to_bits(),
                "{}: [{i}]",
                gpu.case("barrier_chain")
            );
        }
        let ts = rec.timestamps();
        if gpu.ctx.caps().timestamp_period.is_some() {
            let labels: Vec<&str> = ts.iter().map(|t| t.label.as_str()).collect();
            assert_eq!(labels, ["start", "add", "scale", "end"]);
            assert!(
                ts.windows(2).all(|w| w[0].ns <= w[1].ns),
                "not monotonic: {ts:?}"
            );
            assert_eq!(ts[0].ns, 0.0);
            eprintln!("{}: {ts:?}", gpu.case("timestamps"));
        } else {
            assert!(ts.is_empty());
            eprintln!("{}: device has no timestamps", gpu.case("timestamps"));
        }
        // The recorder is reusable after a completed submission.
        rec.begin().unwrap();
        dispatch::scale::scale(&mut rec, tmp.whole(), tmp.whole(), n as u64, 0.5, 0.0).unwrap();
        rec.submit_and_wait().unwrap();
        let got2 = gpu.read_f32(&tmp, 0, n);
        assert!(got2
            .iter()
            .zip(&got)
            .all(|(x, y)| x.to_bits() == (y * 0.5).to_bits()));
    });
}

#[test]
fn descriptor_pool_fallback() {
    // The path for devices without VK_KHR_push_descriptor, forced on every device.
    for gpu in devices_with(|o| o.disable_push_descriptors = true) {
        assert!(gpu.ctx.caps().max_push_descriptors.is_none());
        for _ in 0..2 {
            // Twice: the second round reuses reset pools. 1500 dispatches > one pool.
            let n = 64usize;
            let a = values(n, 1);
            let buf = gpu.buffer_from("a", &f32_bytes(&a));
            let mut rec = gpu.ctx.recorder().unwrap();
            rec.begin().unwrap();
            for _ in 0..1500 {
                dispatch::scale::scale(&mut rec, buf.whole(), buf.whole(), n as u64, 1.0, 1.0)
                    .unwrap();
                rec.barrier().unwrap();
            }
            rec.submit_and_wait().unwrap();
            let got = gpu.read_f32(&buf, 0, n);
            let mut want = a.clone();
            for _ in 0..1500 {
                want.iter_mut().for_each(|x| *x = *x * 1.0 + 1.0);
            }
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(g, w)| g.to_bits() == w.to_bits()),
                "{}",
                gpu.case("pool_fallback")
            );
        }
        binary_case(&gpu, "add", 257, 3, 1, [1, 0, 2]);
        gpu.ctx.wait_idle().unwrap();
        gpu.assert_clean("descriptor_pool_fallback");
    }
}

#[test]
fn pipeline_cache_keys() {
    for_each_device("pipeline_cache", |gpu| {
        let buf = gpu.buffer_from("x", &[0u8; 64]);
        let mut rec = gpu.ctx.recorder().unwrap();
        let push = [0u8; 32];
        let before = gpu.ctx.pipeline_count();
        rec.begin().unwrap();
        for spec in [&[][..], &[], &[7], &[7], &[8]] {
            rec.dispatch(
                ShaderId::scale,
                spec,
                &[buf.whole(), buf.whole()],
                &push,
                [1, 1, 1],
            )
            .unwrap();
            rec.barrier().unwrap();
        }
        rec.submit_and_wait().unwrap();
        assert_eq!(
            gpu.ctx.pipeline_count() - before,
            3,
            "{}",
            gpu.case("pipeline_cache")
        );
    });
}

/// `ContextOptions::pipeline_stats` records the driver's statistics of each new pipeline
/// where the device has `VK_KHR_pipeline_executable_properties`, and nothing without the
/// option.
#[test]
fn pipeline_statistics() {
    let run = |gpu: &Gpu| {
        let buf = gpu.buffer_from("x", &[0u8; 64]);
        let mut rec = gpu.ctx.recorder().unwrap();
        rec.begin().unwrap();
        rec.dispatch(
            ShaderId::scale,
            &[],
            &[buf.whole(), buf.whole()],
            &[0u8; 32],
            [1, 1, 1],
        )
        .unwrap();
        rec.submit_and_wait().unwrap();
    };
    for gpu in devices_with(|o| o.pipeline_stats = true) {
        run(&gpu);
        let stats = gpu.ctx.pipeline_stats();
        let case = gpu.case("pipeline_statistics");
        if gpu.ctx.caps().features.pipeline_executable_info.is_some() {
            assert!(
                stats
                    .iter()
                    .any(|l| l.starts_with("scale [") && l.contains('=')),
                "{case}: {stats:?}"
            );
        } else {
            assert!(stats.is_empty(), "{case}: {stats:?}");
            eprintln!("{case}: the device has no VK_KHR_pipeline_executable_properties");
        }
    }
    for gpu in devices_with(|_| {}) {
        run(&gpu);
        assert!(
            gpu.ctx.pipeline_stats().is_empty(),
            "{}",
            gpu.case("no stats")
        );
    }
}

#[test]
fn large_grid() {
    // More workgroups than maxComputeWorkGroupCount[0] allows in one dimension.
    for_each_device("large_grid", |gpu| {
        let c = gpu.ctx.caps();
        let wg = u64::from(ShaderId::scale.workgroup()[0]);
        let n = u64::from(c.max_compute_work_group_count[0]) * wg + 1000;
        if n * 4 > c.max_storage_buffer_range {
            eprintln!(
                "{}: skipped, {n} floats exceed the storage range",
                gpu.case("large_grid")
            );
            return;
        }
        let groups = dispatch::groups_1d(c, ShaderId::scale, n).unwrap();
        assert!(groups[1] > 1);
        let buf = gpu
            .ctx
            .create_buffer(n * 4, MemoryLocation::Device, "big")
            .unwrap();
        let mut rec = gpu.ctx.recorder().unwrap();
        rec.begin().unwrap();
        rec.fill(buf.whole(), 1.5f32.to_bits()).unwrap();
        rec.barrier().unwrap();
        dispatch::scale::scale(&mut rec, buf.whole(), buf.whole(), n, 2.0, 1.0).unwrap();
        rec.submit_and_wait().unwrap();
        let tail = gpu.read_f32(&buf, n as usize - 2000, 2000);
        assert!(
            tail.iter().all(|&x| x == 4.0),
            "{}",
            gpu.case(&format!("large_grid(n={n})"))
        );
        let head = gpu.read_f32(&buf, 0, 16);
        assert!(head.iter().all(|&x| x == 4.0));
    });
}

#[test]
fn bad_device_index() {
    let n = vkgraph::backend::vulkan::enumerate_devices().unwrap().len();
    let opts = vkgraph::backend::vulkan::ContextOptions {
        device_index: Some(n + 3),
        ..Default::default()
    };
    match vkgraph::backend::vulkan::VulkanContext::new(&opts) {
        Err(e) => assert!(e.to_string().contains(&format!("{}", n + 3)), "{e}"),
        Ok(_) => panic!("device {} should not exist", n + 3),
    }
}

/// A submission that outlasts the fence timeout is `Error::Timeout`, not a hang: the spin
/// kernel polls until the host sets its flag, the wait gives up after the 1 s timeout, and
/// once the flag is set the same recorder waits again and completes. The same with the
/// fence polled for 300 ms before the blocking wait (`VKGRAPH_FENCE_SPIN`): the poll
/// gives way to the timeout, and sees the released kernel end.
#[test]
fn fence_timeout_is_an_error() {
    let blocking = devices_with(|o| o.fence_timeout_s = Some(1));
    let polling = devices_with(|o| {
        o.fence_timeout_s = Some(1);
        o.fence_spin_us = Some(300_000);
    });
    for gpu in blocking.into_iter().chain(polling) {
        let flag = gpu
            .ctx
            .create_buffer(256, MemoryLocation::Upload, "spin flag")
            .expect("flag buffer");
        gpu.ctx.upload(&flag, 0, &[0u8; 8]).expect("clear flag");
        let mut rec = gpu.ctx.recorder().expect("recorder");
        rec.begin().expect("begin");
        // 65,535 workgroups: on llvmpipe (65,535 polls per invocation at most) ~10 s of work.
        dispatch::debug::spin(&mut rec, flag.range(0, 8), u32::MAX, 65_535).expect("spin");
        rec.submit().expect("submit");
        let t0 = std::time::Instant::now();
        match rec.wait() {
            Err(vkgraph::Error::Timeout(m)) => eprintln!("{}: {m}", gpu.case("fence_timeout")),
            other => {
                let mut out = [0u8; 8];
                gpu.ctx.download(&flag, 0, &mut out).expect("read flag");
                panic!(
                    "{}: expected Error::Timeout, got {:?} (flag words {:?})",
                    gpu.case("fence_timeout"),
                    other,
                    out
                )
            }
        }
        let waited = t0.elapsed().as_secs_f64();
        assert!(
            waited >= 0.9,
            "gave up after {waited:.2} s, before the 1 s timeout"
        );
        gpu.ctx
            .upload(&flag, 0, &1u32.to_le_bytes())
            .expect("release the kernel");
        rec.wait().expect("the released kernel finishes");
        let mut out = [0u8; 8];
        gpu.ctx.download(&flag, 0, &mut out).expect("read flag");
        let spun = u32::from_le_bytes(out[4..8].try_into().unwrap());
        assert!(spun > 0 && spun < u32::MAX, "spun {spun} rounds");
        drop(rec);
        gpu.ctx.wait_idle().expect("wait idle");
        gpu.assert_clean("fence_timeout_is_an_error");
    }
}
