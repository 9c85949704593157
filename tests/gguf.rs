//! GGUF reader/writer: round trips, hand-built files (v2, exact v3 layout),
//! every malformed-input case, truncation/byte-flip fuzzing, and the real
//! vocabulary files from llama.cpp's test set.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use vkgraph::gguf::{Array, GgufFile, GgufWriter, TensorInfo, Value};
use vkgraph::quant::GgmlType;
use vkgraph::Error;

// ---- hand-built bytes --------------------------------------------------------

/// Little-endian byte builder, independent of the crate's writer.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> B {
        let mut b = B::default();
        b.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn raw(&mut self, x: &[u8]) -> &mut Self {
        self.0.extend_from_slice(x);
        self
    }
    fn u8(&mut self, x: u8) -> &mut Self {
        self.raw(&[x])
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.raw(&x.to_le_bytes())
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.raw(&x.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    fn kv_u32(&mut self, k: &str, v: u32) -> &mut Self {
        self.str(k).u32(4).u32(v)
    }
    fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.str(k).u32(8).str(v)
    }
    fn tensor(&mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(ne.len() as u32);
        for &d in ne {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, a: usize) -> &mut Self {
        while self.0.len() % a != 0 {
            self.0.push(0);
        }
        self
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

/// A valid v3 file: one string kv, then `tensors` infos, padding, and `data` bytes.
fn with_tensors(tensors: impl FnOnce(&mut B), n: u64, data: usize) -> Vec<u8> {
    let mut b = B::header(3, n, 1);
    b.kv_str("general.architecture", "llama");
    tensors(&mut b);
    b.pad(32);
    b.raw(&vec![0xAB; data]);
    b.0
}

fn parse(bytes: Vec<u8>) -> vkgraph::Result<GgufFile> {
    GgufFile::from_bytes("test.gguf", bytes)
}

/// Asserts a `Error::Gguf` whose message contains every needle; returns its offset.
#[track_caller]
fn expect_gguf_err(bytes: Vec<u8>, needles: &[&str]) -> u64 {
    match parse(bytes) {
        Err(Error::Gguf { what, offset, path }) => {
            assert_eq!(path, "test.gguf");
            for n in needles {
                assert!(what.contains(n), "message {what:?} lacks {n:?}");
            }
            offset
        }
        Err(e) => panic!("expected Error::Gguf, got {e:?}"),
        Ok(_) => panic!("expected Error::Gguf containing {needles:?}, parsed fine"),
    }
}

fn pattern(i: usize, n: u64) -> Vec<u8> {
    (0..n)
        .map(|j| (j as usize * 7 + i * 31 + 1) as u8)
        .collect()
}

// ---- round trips -------------------------------------------------------------

fn every_value() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(65000)),
        ("t.i16", Value::I16(-32000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(-1.5e-5)),
        ("t.bool_t", Value::Bool(true)),
        ("t.bool_f", Value::Bool(false)),
        ("t.str", Value::Str("héllo wörld 你好 🦀\n\"q\"".into())),
        ("t.str_empty", Value::Str(String::new())),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
        ("ключ.юникод", Value::Str("ключ".into())),
        ("a.u8", Array::U8(vec![0, 1, 255]).into()),
        ("a.i8", Array::I8(vec![-128, 0, 127]).into()),
        ("a.u16", Array::U16(vec![1, 65535]).into()),
        ("a.i16", Array::I16(vec![-1, 32767]).into()),
        ("a.u32", Array::U32(vec![7, u32::MAX]).into()),
        ("a.i32", Array::I32(vec![-5, 0, 5, i32::MAX]).into()),
        (
            "a.f32",
            Array::F32(vec![0.5, -0.0, f32::INFINITY, 1e-30]).into(),
        ),
        ("a.bool", Array::Bool(vec![true, false, true]).into()),
        (
            "a.str",
            Array::Str(vec!["".into(), "Ġthe".into(), "▁日本".into()]).into(),
        ),
        ("a.u64", Array::U64(vec![u64::MAX, 0]).into()),
        ("a.i64", Array::I64(vec![i64::MIN, -1]).into()),
        ("a.f64", Array::F64(vec![1e300, -2.5]).into()),
        ("a.empty_u8", Array::U8(vec![]).into()),
        ("a.empty_str", Array::Str(vec![]).into()),
        ("a.empty_f64", Array::F64(vec![]).into()),
        ("a.empty_nested", Array::Nested(vec![]).into()),
        (
            "a.nested",
            Array::Nested(vec![
                Array::I32(vec![1, 2, 3]),
                Array::Str(vec!["x".into()]),
                Array::F32(vec![]),
                Array::Nested(vec![Array::U8(vec![9]), Array::Nested(vec![])]),
            ])
            .into(),
        ),
    ]
}

struct Spec {
    name: &'static str,
    ty: GgmlType,
    ne: &'static [u64],
}

const TENSORS: &[Spec] = &[
    Spec {
        name: "tok_embd.weight",
        ty: GgmlType::F32,
        ne: &[7, 3],
    },
    Spec {
        name: "blk.0.attn_q.weight",
        ty: GgmlType::Q4_0,
        ne: &[64, 3],
    },
    Spec {
        name: "blk.0.attn_k.weight",
        ty: GgmlType::Q4K,
        ne: &[256, 3, 2],
    },
    Spec {
        name: "output_norm.weight",
        ty: GgmlType::F16,
        ne: &[5],
    },
    Spec {
        name: "blk.0.ffn_down.weight",
        ty: GgmlType::Q6K,
        ne: &[512, 1, 1, 2],
    },
    Spec {
        name: "blk.0.attn_v.weight",
        ty: GgmlType::Q8_0,
        ne: &[32, 5],
    },
    Spec {
        name: "pos",
        ty: GgmlType::I32,
        ne: &[3],
    },
];

fn sample_writer(alignment: Option<u64>) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama");
    for (k, v) in every_value() {
        w.add(k, v);
    }
    if let Some(a) = alignment {
        w.set_alignment(a);
    }
    for s in TENSORS {
        w.add_tensor(s.name, s.ty, s.ne).unwrap();
    }
    w
}

fn sample_bytes(alignment: Option<u64>) -> Vec<u8> {
    sample_writer(alignment)
        .to_bytes(|i, t, out| {
            out.write_all(&pattern(i, t.nbytes))
                .map_err(|e| Error::io("<memory>", e))
        })
        .unwrap()
}

fn check_sample(f: &GgufFile, alignment: u64) {
    assert_eq!(f.version, 3);
    assert_eq!(f.alignment, alignment);
    assert_eq!(f.data_offset % alignment, 0);
    assert_eq!(f.arch().unwrap(), "llama");
    for (k, v) in every_value() {
        assert_eq!(f.get(k), Some(&v), "key {k}");
    }
    // The file's metadata keeps insertion order.
    assert_eq!(f.metadata[0].0, "general.architecture");
    assert_eq!(f.tensors.len(), TENSORS.len());
    let mut prev_end = 0;
    for (i, (s, t)) in TENSORS.iter().zip(&f.tensors).enumerate() {
        assert_eq!(t.name, s.name);
        assert_eq!(t.ty, s.ty);
        assert_eq!(t.ne, s.ne);
        let want = s.ty.row_bytes(s.ne[0] as usize).unwrap() as u64 * t.n_rows();
        assert_eq!(t.nbytes, want, "{}", t.name);
        assert_eq!(t.offset % alignment, 0, "{}", t.name);
        assert!(t.offset >= prev_end, "{} overlaps its predecessor", t.name);
        prev_end = t.offset + t.nbytes;
        assert_eq!(f.tensor(s.name), Some(t));
        assert_eq!(f.tensor_data(t), &pattern(i, t.nbytes)[..], "{}", t.name);
        // Zero-copy: the slice points into the file's bytes at the right place.
        let base = f.bytes().as_ptr() as usize;
        let at = f.tensor_data(t).as_ptr() as usize - base;
        assert_eq!(at as u64, f.data_offset + t.offset);
    }
    assert_eq!(f.tensor("nope"), None);
}

#[test]
fn round_trip_every_value_type_default_alignment() {
    let f = parse(sample_bytes(None)).unwrap();
    check_sample(&f, 32);
    assert_eq!(f.get("general.alignment"), None);
}

#[test]
fn round_trip_alignment_64_and_1_through_files() {
    let dir = std::env::temp_dir().join(format!("vkgraph-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for a in [64, 1, 4096] {
        let path = dir.join(format!("rt{a}.gguf"));
        sample_writer(Some(a))
            .write(&path, |i, t, out| {
                out.write_all(&pattern(i, t.nbytes))
                    .map_err(|e| Error::io("x", e))
            })
            .unwrap();
        let f = GgufFile::open(&path).unwrap();
        check_sample(&f, a);
        // For a manual cross-check with another reader (e.g. gguf-py).
        if let Some(keep) = std::env::var_os("VKGRAPH_GGUF_KEEP") {
            std::fs::copy(&path, Path::new(&keep).join(format!("rt{a}.gguf"))).unwrap();
        }
        assert_eq!(f.get("general.alignment"), Some(&Value::U32(a as u32)));
        // The file and the in-memory writer produce the same bytes.
        assert_eq!(f.bytes(), &sample_bytes(Some(a))[..]);
        assert_no_temp_files(path.parent().unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_output_matches_hand_built_layout() {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama");
    w.add("llama.block_count", Value::U32(2));
    w.add_tensor("a", GgmlType::F32, &[3]).unwrap();
    w.add_tensor("b", GgmlType::Q4_0, &[32, 2]).unwrap();
    let got = w
        .to_bytes(|i, t, out| {
            out.write_all(&pattern(i, t.nbytes))
                .map_err(|e| Error::io("x", e))
        })
        .unwrap();

    let mut b = B::header(3, 2, 2);
    b.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2)
        .tensor("a", &[3], 0, 0)
        // 12 bytes of "a", padded to 32.
        .tensor("b", &[32, 2], 2, 32)
        .pad(32)
        .raw(&pattern(0, 12))
        .pad(32)
        .raw(&pattern(1, 36))
        .pad(32);
    assert_eq!(got, b.0);
}

#[test]
fn hand_built_v2_file_reads() {
    let mut b = B::header(2, 1, 4);
    b.kv_str("general.architecture", "llama")
        .kv_u32("llama.context_length", 2048)
        // A bool stored as 1.
        .str("general.flag")
        .u32(7)
        .u8(1)
        // An i32 array.
        .str("tokenizer.ggml.token_type")
        .u32(9)
        .u32(5)
        .u64(3)
        .u32(1)
        .u32(2)
        .u32(u32::MAX)
        .tensor("w", &[4, 2], 0, 0)
        .pad(32);
    let data_offset = b.len();
    let data: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    b.raw(&data);
    let f = parse(b.0).unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(f.data_offset, data_offset);
    assert_eq!(f.get_u32("llama.context_length").unwrap(), 2048);
    assert!(f.get_bool("general.flag").unwrap());
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type").unwrap(),
        vec![1, 2, -1]
    );
    let t = f.tensor("w").unwrap();
    assert_eq!(
        (t.ty, t.ne.clone(), t.nbytes),
        (GgmlType::F32, vec![4, 2], 32)
    );
    assert_eq!(f.tensor_data(t), &data[..]);
}

// ---- typed getters -------------------------------------------------------------

#[test]
fn typed_getters_and_defaults() {
    let f = parse(sample_bytes(None)).unwrap();
    assert_eq!(f.get_u32("t.u16").unwrap(), 65000);
    assert_eq!(f.get_u64("t.u64").unwrap(), u64::MAX);
    assert_eq!(f.get_f32("t.f32").unwrap(), -1.5e-5);
    assert_eq!(f.get_f32("t.u16").unwrap(), 65000.0);
    assert!(f.get_bool("t.bool_t").unwrap());
    assert_eq!(f.get_str("ключ.юникод").unwrap(), "ключ");
    assert_eq!(f.get_str_array("a.str").unwrap()[1], "Ġthe");
    assert_eq!(f.get_f32_array("a.i8").unwrap(), vec![-128.0, 0.0, 127.0]);
    assert_eq!(f.get_u32_or("missing", 7).unwrap(), 7);
    assert_eq!(f.get_f32_or("missing", 0.25).unwrap(), 0.25);
    assert!(f.get_bool_or("missing", true).unwrap());
    assert_eq!(f.get_str_or("missing", "d").unwrap(), "d");
    assert_eq!(f.get_u32_or("t.u32", 7).unwrap(), 4_000_000_000);

    let meta_err = |r: vkgraph::Result<()>, key: &str, needle: &str| match r {
        Err(Error::Metadata { key: k, what }) => {
            assert_eq!(k, key);
            assert!(what.contains(needle), "{what:?} lacks {needle:?}");
        }
        other => panic!("expected Error::Metadata for {key}, got {other:?}"),
    };
    meta_err(f.get_u32("missing").map(drop), "missing", "missing");
    meta_err(f.get_u32("t.str").map(drop), "t.str", "found str");
    meta_err(f.get_u32("t.i8").map(drop), "t.i8", "expected");
    meta_err(f.get_u32("t.u64").map(drop), "t.u64", "does not fit u32");
    meta_err(f.get_u32_or("t.str", 1).map(drop), "t.str", "expected");
    meta_err(f.get_bool_or("t.u8", true).map(drop), "t.u8", "bool");
    meta_err(f.get_str("t.u8").map(drop), "t.u8", "string");
    meta_err(f.get_str_array("a.i32").map(drop), "a.i32", "[i32]");
    meta_err(f.get_i32_array("a.u32").map(drop), "a.u32", "i32");
}

#[test]
fn value_accessors() {
    assert_eq!(Value::I8(-1).as_u64(), None);
    assert_eq!(Value::I32(5).as_u64(), Some(5));
    assert_eq!(Value::U64(u64::MAX).as_i64(), None);
    assert_eq!(Value::U8(3).as_i64(), Some(3));
    assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
    assert_eq!(Value::I16(-2).as_f32(), Some(-2.0));
    assert_eq!(Value::Str("1".into()).as_f32(), None);
    assert_eq!(Value::Bool(true).as_u64(), None);
    assert_eq!(Value::U8(1).as_bool(), None);
    let big = Value::from(vec![1u32, 3_000_000_000]);
    assert_eq!(big.as_i32_array(), None);
    assert_eq!(Value::from(vec![1u64, 2]).as_i32_array(), Some(vec![1, 2]));
    assert_eq!(Value::from(vec![1.5f64]).as_f32_array(), Some(vec![1.5]));
    assert_eq!(Value::from(vec!["a", "b"]).as_str_array().unwrap().len(), 2);
    assert_eq!(Value::from(vec![true]).as_f32_array(), None);
    assert_eq!(Value::from(vec![0.5f32]).as_i32_array(), None);
}

// ---- writer errors ---------------------------------------------------------------

#[test]
fn writer_rejects_bad_tensors_and_short_data() {
    let mut w = GgufWriter::new();
    let tensor_err = |r: vkgraph::Result<()>, needle: &str| match r {
        Err(Error::Tensor { what, .. }) => assert!(what.contains(needle), "{what:?}"),
        other => panic!("expected Error::Tensor({needle}), got {other:?}"),
    };
    tensor_err(w.add_tensor("q", GgmlType::Q4_0, &[33, 2]), "block size");
    tensor_err(w.add_tensor("q", GgmlType::F32, &[]), "dims");
    tensor_err(w.add_tensor("q", GgmlType::F32, &[1, 1, 1, 1, 1]), "dims");
    tensor_err(w.add_tensor("q", GgmlType::F32, &[4, 0]), "ne[1]");
    tensor_err(
        w.add_tensor("q", GgmlType::F32, &[1 << 40, 1 << 40]),
        "overflow",
    );
    w.add_tensor("q", GgmlType::F32, &[4]).unwrap();
    tensor_err(w.add_tensor("q", GgmlType::F32, &[4]), "twice");

    // A callback writing the wrong byte count fails and leaves no file behind.
    let dir = std::env::temp_dir().join(format!("vkgraph-gguf-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short.gguf");
    let r = w.write(&path, |_, _, out| {
        out.write_all(&[0; 15]).map_err(|e| Error::io("x", e))
    });
    tensor_err(r, "wrote 15 bytes, expected 16");
    assert!(!path.exists());
    assert_no_temp_files(&dir);
    // A failing callback's own error comes back unchanged.
    let r = w.to_bytes(|_, _, _| Err(Error::Usage("stop".into())));
    assert!(matches!(r, Err(Error::Usage(m)) if m == "stop"));

    // Alignment must be a nonzero power of two.
    for a in [0, 3, 1 << 33] {
        w.set_alignment(a);
        assert!(matches!(
            w.to_bytes(|_, _, _| Ok(())),
            Err(Error::Metadata { .. })
        ));
    }
    w.add("general.alignment", "sixteen");
    assert!(matches!(
        w.to_bytes(|_, _, _| Ok(())),
        Err(Error::Metadata { .. })
    ));
    w.add("general.alignment", Value::U64(16));
    assert_eq!(w.alignment(), 16);
    assert_eq!(w.tensor_infos().unwrap()[0].offset, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_replaces_duplicate_keys() {
    let mut w = GgufWriter::new();
    w.add("k", Value::U32(1));
    w.add("k", Value::Str("two".into()));
    let f = parse(w.to_bytes(|_, _, _| Ok(())).unwrap()).unwrap();
    assert_eq!(f.metadata.len(), 1);
    assert_eq!(f.get_str("k").unwrap(), "two");
}

// ---- malformed files ---------------------------------------------------------------

#[test]
fn malformed_header() {
    let mut b = B::header(3, 0, 0);
    b.0[3] = b'X';
    assert_eq!(expect_gguf_err(b.0, &["bad magic"]), 0);
    assert_eq!(
        expect_gguf_err(B::header(1, 0, 0).0, &["unsupported version 1"]),
        4
    );
    expect_gguf_err(B::header(7, 0, 0).0, &["unknown version 7"]);
    expect_gguf_err(B::header(3u32.swap_bytes(), 0, 0).0, &["big-endian"]);
    expect_gguf_err(Vec::new(), &["truncated", "magic"]);
    expect_gguf_err(
        B::header(3, 0, 0).0[..12].to_vec(),
        &["truncated", "tensor count"],
    );
    expect_gguf_err(B::header(3, 0, u64::MAX).0, &["metadata count", "exceed"]);
    expect_gguf_err(B::header(3, 1 << 40, 0).0, &["tensor count", "exceed"]);
    // Counts that are each plausible but together exceed the file.
    let mut b = B::header(3, 2, 2);
    b.raw(&[0; 80]);
    expect_gguf_err(b.0, &["exceed"]);
}

#[test]
fn malformed_metadata() {
    // Huge key length.
    let mut b = B::header(3, 0, 1);
    b.u64(u64::MAX).raw(&[0; 16]);
    expect_gguf_err(b.0, &["metadata key", "exceeds"]);
    // Value cut short.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(4).raw(&[1, 2]);
    expect_gguf_err(b.0, &["metadata `k`", "truncated"]);
    // Unknown value type.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(13).u32(0);
    expect_gguf_err(b.0, &["metadata `k`", "unknown value type 13"]);
    // Unknown array element type.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(99).u64(0);
    expect_gguf_err(b.0, &["unknown array element type 99"]);
    // Array length beyond the file (u64 elements: count × 8 would overflow).
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(10).u64(1 << 61).raw(&[0; 64]);
    expect_gguf_err(b.0, &["metadata `k`", "array length", "exceeds"]);
    // String array whose count exceeds remaining / 8.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(8).u64(5).raw(&[0; 39]);
    expect_gguf_err(b.0, &["array length 5", "exceeds"]);
    // String inside an array longer than the file.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(8).u64(1).u64(1000).raw(b"abc");
    expect_gguf_err(b.0, &["string length", "exceeds"]);
    // Nesting too deep for the stack guard.
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9);
    for _ in 0..40 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    expect_gguf_err(b.0, &["nested deeper"]);
    // Duplicate key: offset points at the second copy.
    let mut b = B::header(3, 0, 2);
    b.kv_u32("k", 1);
    let second = b.len();
    b.kv_u32("k", 2);
    assert_eq!(
        expect_gguf_err(b.0, &["duplicate metadata key `k`"]),
        second
    );
}

#[test]
fn malformed_alignment() {
    for (v, needle) in [
        (0u32, "power of two"),
        (3, "power of two"),
        (48, "power of two"),
    ] {
        let mut b = B::header(3, 0, 1);
        b.kv_u32("general.alignment", v);
        expect_gguf_err(b.0, &["general.alignment", needle]);
    }
    let mut b = B::header(3, 0, 1);
    b.kv_str("general.alignment", "32");
    expect_gguf_err(b.0, &["general.alignment", "str"]);
    // A valid non-default alignment moves the data section.
    let mut b = B::header(3, 1, 1);
    b.kv_u32("general.alignment", 256)
        .tensor("t", &[2], 0, 0)
        .pad(256);
    let off = b.len();
    b.raw(&[0; 8]);
    let f = parse(b.0).unwrap();
    assert_eq!((f.alignment, f.data_offset), (256, off));
}

#[test]
fn malformed_tensor_infos() {
    let one = |ne: &'static [u64], ty: u32, off: u64, data: usize| {
        with_tensors(
            |b| {
                b.tensor("blk.0.w", ne, ty, off);
            },
            1,
            data,
        )
    };
    // A valid baseline, so each failure below is due to its one change.
    assert!(parse(one(&[8, 2], 0, 0, 64)).is_ok());
    expect_gguf_err(
        one(&[8, 2], 9, 0, 64),
        &["blk.0.w", "ggml type id 9", "q8_1"],
    );
    expect_gguf_err(one(&[8, 2], 200, 0, 64), &["blk.0.w", "ggml type id 200"]);
    expect_gguf_err(one(&[1, 1, 1, 1, 1], 0, 0, 64), &["blk.0.w", "n_dims 5"]);
    expect_gguf_err(one(&[], 0, 0, 64), &["blk.0.w", "n_dims 0"]);
    expect_gguf_err(one(&[8, 0], 0, 0, 64), &["blk.0.w", "ne[1] = 0"]);
    expect_gguf_err(one(&[1 << 63], 0, 0, 64), &["blk.0.w", "ne[0]", "invalid"]);
    expect_gguf_err(one(&[1 << 32, 1 << 32], 0, 0, 64), &["blk.0.w", "overflow"]);
    expect_gguf_err(one(&[33, 2], 2, 0, 64), &["blk.0.w", "block size 32"]);
    expect_gguf_err(
        one(&[8, 2], 0, 4, 96),
        &["blk.0.w", "not a multiple of the alignment"],
    );
    expect_gguf_err(one(&[8, 2], 0, 0, 63), &["blk.0.w", "out of range"]);
    expect_gguf_err(one(&[8, 2], 0, 32, 64), &["blk.0.w", "out of range"]);
    expect_gguf_err(
        one(&[8, 2], 0, u64::MAX - 31, 64),
        &["blk.0.w", "out of range"],
    );
    // Tensor name longer than the file.
    let mut b = B::header(3, 1, 0);
    b.u64(1 << 40).raw(&[0; 40]);
    expect_gguf_err(b.0, &["tensor name", "exceeds"]);
    // Duplicate names.
    let dup = with_tensors(
        |b| {
            b.tensor("x", &[4], 0, 0).tensor("x", &[4], 0, 32);
        },
        2,
        64,
    );
    expect_gguf_err(dup, &["duplicate tensor name `x`"]);
}

// ---- fuzz-ish robustness ---------------------------------------------------------

/// Parses without panicking; any error must be `Error::Gguf`.
#[track_caller]
fn parse_no_panic(bytes: Vec<u8>, ctx: &str) -> bool {
    let r = catch_unwind(AssertUnwindSafe(|| parse(bytes)));
    match r {
        Err(_) => panic!("parser panicked ({ctx})"),
        Ok(Ok(_)) => true,
        Ok(Err(Error::Gguf { .. })) => false,
        Ok(Err(e)) => panic!("non-GGUF error ({ctx}): {e:?}"),
    }
}

#[test]
fn truncation_at_every_byte() {
    let bytes = sample_bytes(None);
    let f = parse(bytes.clone()).unwrap();
    let last = f.tensors.last().unwrap();
    let needed = (f.data_offset + last.offset + last.nbytes) as usize;
    for cut in 0..bytes.len() {
        let ok = parse_no_panic(bytes[..cut].to_vec(), &format!("cut at {cut}"));
        // Only the trailing padding after the last tensor may go missing.
        assert_eq!(ok, cut >= needed, "cut at {cut} (data needs {needed})");
    }
}

#[test]
fn byte_flips_in_header_never_panic() {
    let bytes = sample_bytes(Some(64));
    let f = parse(bytes.clone()).unwrap();
    let head = f.data_offset as usize;
    for pos in 0..head {
        for mask in [0x01u8, 0x02, 0x10, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            parse_no_panic(b, &format!("byte {pos} ^ {mask:#x}"));
        }
    }
    // Random multi-byte corruption, including huge little-endian words.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for it in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let pos = (next() % head as u64) as usize;
            if next() % 3 == 0 {
                let word = next().to_le_bytes();
                let end = (pos + 8).min(b.len());
                b[pos..end].copy_from_slice(&word[..end - pos]);
            } else {
                b[pos] = next() as u8;
            }
        }
        parse_no_panic(b, &format!("random iteration {it}"));
    }
}

// ---- real files ------------------------------------------------------------------

const VOCAB: &str = "/work/shared/data/vocab";

#[test]
fn real_vocab_gpt2() {
    let f = GgufFile::open(Path::new(VOCAB).join("ggml-vocab-gpt-2.gguf")).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.arch().unwrap(), "gpt2");
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 50257);
    assert_eq!(tokens[0], "!");
    assert_eq!(tokens[50256], "<|endoftext|>");
    assert_eq!(
        f.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        50000
    );
    assert_eq!(f.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 50256);
    assert_eq!(
        f.get_u32(&f.arch_key("context_length").unwrap()).unwrap(),
        1024
    );
    assert!(f.tensors.is_empty());
    let s = f.summary();
    assert!(s.contains("tokenizer.ggml.tokens: [50257 × str]"), "{s}");
    assert!(s.contains("general.architecture: str = \"gpt2\""), "{s}");
}

#[test]
fn real_vocab_llama_spm() {
    let f = GgufFile::open(Path::new(VOCAB).join("ggml-vocab-llama-spm.gguf")).unwrap();
    assert_eq!(f.arch().unwrap(), "llama");
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "llama");
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 32000);
    assert_eq!(&tokens[..3], ["<unk>", "<s>", "</s>"]);
    assert_eq!(
        f.get_f32_array("tokenizer.ggml.scores").unwrap().len(),
        32000
    );
    let types = f.get_i32_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!(&types[..3], [2, 3, 3]);
    assert_eq!(f.get_u32("llama.vocab_size").unwrap(), 32000);
    assert!(f.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    assert!(f.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap() > 0.0);
}

#[test]
fn real_vocab_rewrites_to_same_metadata_bytes() {
    // Our writer reproduces llama.cpp's own encoding of the metadata byte for byte.
    for name in ["ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"] {
        let f = GgufFile::open(Path::new(VOCAB).join(name)).unwrap();
        let mut w = GgufWriter::new();
        for (k, v) in &f.metadata {
            w.add(k, v.clone());
        }
        let out = w.to_bytes(|_, _: &TensorInfo, _| Ok(())).unwrap();
        let orig = f.bytes();
        assert!(out.len() >= orig.len(), "{name}");
        assert_eq!(&out[..orig.len()], orig, "{name}");
        assert!(out[orig.len()..].iter().all(|&b| b == 0), "{name}: padding");
    }
}

#[test]
fn summary_abbreviates_long_arrays() {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "qwen3");
    w.add("v", Value::from(vec![0i32; 150_000]));
    w.add("short", Value::from(vec![1u32, 2, 3]));
    w.add(
        "nest",
        Array::Nested(vec![Array::U8(vec![1]), Array::U8(vec![])]),
    );
    w.add_tensor("w", GgmlType::Q4K, &[256, 4]).unwrap();
    let bytes = w
        .to_bytes(|_, t, out| {
            out.write_all(&vec![0; t.nbytes as usize])
                .map_err(|e| Error::io("x", e))
        })
        .unwrap();
    let s = parse(bytes).unwrap().summary();
    assert!(s.contains("v: [150000 × i32]"), "{s}");
    assert!(s.contains("short: [u32] = [1, 2, 3]"), "{s}");
    assert!(s.contains("nest: [[u8]] = [[u8] = [1], [u8] = []]"), "{s}");
    assert!(s.contains("q4_K: 1 tensors, 576 B"), "{s}");
}

/// The writer leaves no `<name>.tmp.*` file behind.
fn assert_no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.contains(".tmp"), "temporary file left: {name}");
    }
}
