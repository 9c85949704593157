//! SPIR-V rewrite from `SPV_NV_cooperative_matrix` to `SPV_KHR_cooperative_matrix`
//! (used by build.rs for variants that define `COOPMAT_NV_TO_KHR`).
//!
//! Why: the glslang inside the shaderc crate we build predates `GL_KHR_cooperative_matrix`
//! (glslang 13), but knows `GL_NV_cooperative_matrix`, whose SPIR-V differs from the KHR
//! one only in opcodes and operand encoding:
//! - `OpTypeCooperativeMatrixNV %comp %scope %rows %cols` becomes
//!   `OpTypeCooperativeMatrixKHR %comp %scope %rows %cols %use`; the use (A, B,
//!   accumulator) is taken from the multiply-adds that read each type, so a type used in
//!   two roles (e.g. A and B both f16 16x16) is an error, never a guess;
//! - loads/stores take a memory-layout constant (0 row-major, 1 column-major) before the
//!   stride instead of a bool after it; memory operands are kept;
//! - multiply-add and length keep their operands.
//!
//! Invariants: every id the output references is defined before use (new `OpConstant`s go
//! just before the first cooperative-matrix type, after the `uint` type they need); the
//! id bound grows by the ids added; anything unexpected is an error naming the problem.

use std::collections::HashMap;

const OP_EXTENSION: u32 = 10;
const OP_CAPABILITY: u32 = 17;
const OP_TYPE_INT: u32 = 21;
const OP_CONSTANT_TRUE: u32 = 41;
const OP_CONSTANT_FALSE: u32 = 42;
const OP_CONSTANT: u32 = 43;

const CAP_COOPMAT_NV: u32 = 5357;
const CAP_COOPMAT_KHR: u32 = 6022;
const NV_TYPE: u32 = 5358;
const NV_LOAD: u32 = 5359;
const NV_STORE: u32 = 5360;
const NV_MULADD: u32 = 5361;
const NV_LENGTH: u32 = 5362;
const KHR_TYPE: u32 = 4456;
const KHR_LOAD: u32 = 4457;
const KHR_STORE: u32 = 4458;
const KHR_MULADD: u32 = 4459;
const KHR_LENGTH: u32 = 4460;

/// Opcodes whose word 1 is a result type and word 2 a result id, enough to find the
/// types of multiply-add operands in glslang output.
const TYPED_RESULTS: &[u32] = &[
    1,   // OpUndef
    44,  // OpConstantComposite
    46,  // OpConstantNull
    55,  // OpFunctionParameter
    57,  // OpFunctionCall
    61,  // OpLoad
    80,  // OpCompositeConstruct
    81,  // OpCompositeExtract
    82,  // OpCompositeInsert
    83,  // OpCopyObject
    113, // OpUConvert
    114, // OpSConvert
    115, // OpFConvert
    127, // OpFNegate
    129, // OpFAdd
    131, // OpFSub
    133, // OpFMul
    136, // OpFDiv
    143, // OpMatrixTimesScalar
    169, // OpSelect
    245, // OpPhi
    NV_LOAD, NV_MULADD,
];

fn encode_str(s: &str) -> Vec<u32> {
    let mut bytes = s.as_bytes().to_vec();
    bytes.push(0);
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    bytes
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn decode_str(words: &[u32]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Splits a module into its header and instructions (each with its opcode word).
fn split(words: &[u32]) -> Result<(Vec<u32>, Vec<Vec<u32>>), String> {
    if words.len() < 5 || words[0] != 0x0723_0203 {
        return Err("not a SPIR-V module".into());
    }
    let mut out = Vec::new();
    let mut i = 5;
    while i < words.len() {
        let wc = (words[i] >> 16) as usize;
        if wc == 0 || i + wc > words.len() {
            return Err(format!("malformed instruction at word {i}"));
        }
        out.push(words[i..i + wc].to_vec());
        i += wc;
    }
    Ok((words[..5].to_vec(), out))
}

fn inst(op: u32, operands: &[u32]) -> Vec<u32> {
    let mut v = Vec::with_capacity(operands.len() + 1);
    v.push(((operands.len() as u32 + 1) << 16) | op);
    v.extend_from_slice(operands);
    v
}

/// Rewrites an NV cooperative-matrix module to the KHR extension (see the module doc).
/// A module without NV cooperative matrices is returned unchanged.
pub fn nv_to_khr(words: &[u32]) -> Result<Vec<u32>, String> {
    let (mut header, insts) = split(words)?;
    let op = |i: &Vec<u32>| i[0] & 0xffff;

    // Types of values, bool constants, the uint type.
    let mut type_of: HashMap<u32, u32> = HashMap::new();
    let mut bools: HashMap<u32, bool> = HashMap::new();
    let mut uint_ty = None;
    let mut first_type = None;
    for (n, i) in insts.iter().enumerate() {
        match op(i) {
            o if TYPED_RESULTS.contains(&o) && i.len() >= 3 => {
                type_of.insert(i[2], i[1]);
            }
            OP_CONSTANT_TRUE => {
                bools.insert(i[2], true);
            }
            OP_CONSTANT_FALSE => {
                bools.insert(i[2], false);
            }
            OP_TYPE_INT if i.len() == 4 && i[2] == 32 && i[3] == 0 => {
                uint_ty.get_or_insert(i[1]);
            }
            NV_TYPE => {
                first_type.get_or_insert(n);
            }
            _ => {}
        }
    }
    let Some(first_type) = first_type else {
        return Ok(words.to_vec());
    };
    let uint_ty = uint_ty
        .filter(|&u| {
            insts[..first_type]
                .iter()
                .any(|i| op(i) == OP_TYPE_INT && i[1] == u)
        })
        .ok_or("no 32-bit uint type before the first cooperative-matrix type")?;

    // Use of each matrix type: 0 = A, 1 = B, 2 = accumulator.
    let mut uses: HashMap<u32, u32> = HashMap::new();
    let mut set_use = |ty: u32, u: u32| -> Result<(), String> {
        match uses.insert(ty, u) {
            Some(old) if old != u => Err(format!(
                "cooperative-matrix type %{ty} is used as {} and as {}: give A, B and the \
                 accumulator distinct shapes or component types",
                ["A", "B", "accumulator"][old as usize],
                ["A", "B", "accumulator"][u as usize]
            )),
            _ => Ok(()),
        }
    };
    for i in insts.iter().filter(|i| op(i) == NV_MULADD) {
        if i.len() != 6 {
            return Err("malformed OpCooperativeMatrixMulAddNV".into());
        }
        set_use(i[1], 2)?;
        for (k, u) in [(3usize, 0u32), (4, 1), (5, 2)] {
            let ty = *type_of
                .get(&i[k])
                .ok_or_else(|| format!("type of multiply-add operand %{} not found", i[k]))?;
            set_use(ty, u)?;
        }
    }

    // New constants: uint 0, 1, 2 (uses and layouts).
    let mut bound = header[3];
    let consts: Vec<u32> = (0..3)
        .map(|_| {
            bound += 1;
            bound - 1
        })
        .collect();
    header[3] = bound;

    let mut out = header;
    for (n, i) in insts.iter().enumerate() {
        if n == first_type {
            for (v, &id) in consts.iter().enumerate() {
                out.extend(inst(OP_CONSTANT, &[uint_ty, id, v as u32]));
            }
        }
        let layout = |b: u32| -> Result<u32, String> {
            let col = bools
                .get(&b)
                .ok_or_else(|| format!("column-major operand %{b} is not a bool constant"))?;
            Ok(consts[usize::from(*col)])
        };
        match op(i) {
            OP_CAPABILITY if i.get(1) == Some(&CAP_COOPMAT_NV) => {
                out.extend(inst(OP_CAPABILITY, &[CAP_COOPMAT_KHR]));
            }
            OP_EXTENSION if decode_str(&i[1..]) == "SPV_NV_cooperative_matrix" => {
                out.extend(inst(
                    OP_EXTENSION,
                    &encode_str("SPV_KHR_cooperative_matrix"),
                ));
            }
            NV_TYPE => {
                let u = *uses.get(&i[1]).ok_or_else(|| {
                    format!("cooperative-matrix type %{} is never multiplied", i[1])
                })?;
                out.extend(inst(
                    KHR_TYPE,
                    &[i[1], i[2], i[3], i[4], i[5], consts[u as usize]],
                ));
            }
            NV_LOAD => {
                // rt res ptr stride colmajor [memory operands]
                if i.len() < 6 {
                    return Err("malformed OpCooperativeMatrixLoadNV".into());
                }
                let mut ops = vec![i[1], i[2], i[3], layout(i[5])?, i[4]];
                ops.extend_from_slice(&i[6..]);
                out.extend(inst(KHR_LOAD, &ops));
            }
            NV_STORE => {
                // ptr obj stride colmajor [memory operands]
                if i.len() < 5 {
                    return Err("malformed OpCooperativeMatrixStoreNV".into());
                }
                let mut ops = vec![i[1], i[2], layout(i[4])?, i[3]];
                ops.extend_from_slice(&i[5..]);
                out.extend(inst(KHR_STORE, &ops));
            }
            NV_MULADD => out.extend(inst(KHR_MULADD, &i[1..])),
            NV_LENGTH => out.extend(inst(KHR_LENGTH, &i[1..])),
            _ => out.extend_from_slice(i),
        }
    }
    Ok(out)
}
