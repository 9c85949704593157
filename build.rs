//! Compiles every `shaders/*.comp` to SPIR-V with shaderc and generates the shader
//! registry `$OUT_DIR/shaders.rs` (included by `src/backend/vulkan/shaders.rs`).
//!
//! Invariants:
//! - One GLSL source per op family; variants are rows of `shaders/variants.txt`
//!   (`name  file.comp  DEFINE[=VALUE] ...`). A `.comp` with no row is compiled once,
//!   named after its file stem. Variant names are unique and valid Rust identifiers.
//! - Reflection-free metadata: every `.comp` starts with header comments
//!   `// bindings: N`, `// push: BYTES` and optionally `// workgroup: X [Y [Z]]`
//!   (default 64 1 1). build.rs defines `WG_X`, `WG_Y`, `WG_Z` from the header (a
//!   variant may override them with its own defines), so the registry and the shader
//!   always agree on the workgroup size.
//! - `#include "common/x.glsl"` resolves relative to `shaders/` (or the including file);
//!   every source, include and the variant table are emitted as `rerun-if-changed`.
//! - The SPIR-V is embedded with `include_bytes!`: the binary never needs shaderc.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One shader variant to compile.
#[derive(Clone, Debug)]
struct Variant {
    name: String,
    file: String,
    defines: Vec<(String, Option<String>)>,
}

/// (variant index, SPIR-V, include files read).
type Compiled = (usize, Vec<u8>, BTreeSet<PathBuf>);

/// Header metadata parsed from a `.comp` file.
#[derive(Clone, Copy, Debug)]
struct Meta {
    bindings: u32,
    push: u32,
    workgroup: [u32; 3],
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let shader_dir = manifest.join("shaders");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", shader_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        shader_dir.join("common").display()
    );

    if let Err(e) = run(&shader_dir, &out_dir) {
        // A readable failure: cargo shows everything build scripts print on error.
        eprintln!("shader build failed:\n{e}");
        std::process::exit(1);
    }
}

fn run(shader_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let mut sources: Vec<String> = Vec::new();
    // A checkout without shaders/ (e.g. a branch that predates them) gets an empty
    // registry rather than a failed build.
    let entries = match std::fs::read_dir(shader_dir) {
        Ok(e) => e.collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", shader_dir.display())),
    };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|s| s.to_str()) == Some("comp") {
            println!("cargo:rerun-if-changed={}", path.display());
            sources.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    sources.sort();

    let table_path = shader_dir.join("variants.txt");
    println!("cargo:rerun-if-changed={}", table_path.display());
    let table = match std::fs::read_to_string(&table_path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", table_path.display())),
    };
    let variants = parse_variants(&table, &sources)?;

    let mut metas = BTreeMap::new();
    for file in &sources {
        let text = std::fs::read_to_string(shader_dir.join(file))
            .map_err(|e| format!("shaders/{file}: {e}"))?;
        metas.insert(file.clone(), parse_meta(file, &text)?);
    }

    // Compile in parallel: there will be hundreds of variants, each independent.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(variants.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Compiled, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let compiler = shaderc::Compiler::new()
                        .map_err(|e| format!("cannot initialise shaderc: {e}"));
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= variants.len() {
                            break;
                        }
                        let r = compiler.as_ref().map_err(Clone::clone).and_then(|c| {
                            compile(c, shader_dir, &variants[i], &metas[&variants[i].file])
                                .map(|(spv, inc)| (i, spv, inc))
                        });
                        out.push(r);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("shader compile thread panicked"))
            .collect()
    });

    let mut spirv: Vec<Vec<u8>> = vec![Vec::new(); variants.len()];
    let mut includes = BTreeSet::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((i, spv, inc)) => {
                spirv[i] = spv;
                includes.extend(inc);
            }
            Err(e) => errors.push(e),
        }
    }
    for inc in &includes {
        println!("cargo:rerun-if-changed={}", inc.display());
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }

    let spv_dir = out_dir.join("spirv");
    std::fs::create_dir_all(&spv_dir).map_err(|e| e.to_string())?;
    let mut code = String::new();
    code.push_str("// Generated by build.rs from shaders/ — do not edit.\n\n");
    code.push_str("/// Every compiled shader variant (names from `shaders/variants.txt`).\n");
    code.push_str("#[allow(non_camel_case_types)]\n");
    code.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n");
    code.push_str("pub enum ShaderId {\n");
    for v in &variants {
        let defs: Vec<String> = v
            .defines
            .iter()
            .map(|(k, val)| match val {
                Some(val) => format!("{k}={val}"),
                None => k.clone(),
            })
            .collect();
        let _ = writeln!(
            code,
            "    /// `shaders/{}` {}\n    {},",
            v.file,
            defs.join(" "),
            v.name
        );
    }
    code.push_str("}\n\n");

    code.push_str("#[repr(C, align(4))]\nstruct Spv<const N: usize>([u8; N]);\n\n");
    for (v, spv) in variants.iter().zip(&spirv) {
        let path = spv_dir.join(format!("{}.spv", v.name));
        std::fs::write(&path, spv).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(
            code,
            "static SPV_{}: Spv<{}> = Spv(*include_bytes!({:?}));",
            v.name.to_uppercase(),
            spv.len(),
            path.display().to_string()
        );
    }

    code.push_str("\nimpl ShaderId {\n");
    code.push_str("    /// All variants, in declaration order.\n");
    let _ = writeln!(
        code,
        "    pub const ALL: [ShaderId; {}] = [",
        variants.len()
    );
    for v in &variants {
        let _ = writeln!(code, "        ShaderId::{},", v.name);
    }
    code.push_str("    ];\n\n");
    let table_fn = |code: &mut String, doc: &str, sig: &str, f: &dyn Fn(&Variant) -> String| {
        let _ = writeln!(
            code,
            "    /// {doc}\n    pub fn {sig} {{\n        match self {{"
        );
        for v in &variants {
            let _ = writeln!(code, "            ShaderId::{} => {},", v.name, f(v));
        }
        code.push_str("        }\n    }\n\n");
    };
    table_fn(
        &mut code,
        "The variant name, as in `shaders/variants.txt`.",
        "name(self) -> &'static str",
        &|v| format!("{:?}", v.name),
    );
    table_fn(
        &mut code,
        "The GLSL source file the variant is compiled from.",
        "source(self) -> &'static str",
        &|v| format!("{:?}", v.file),
    );
    table_fn(
        &mut code,
        "SPIR-V bytes (4-byte aligned).",
        "spirv_bytes(self) -> &'static [u8]",
        &|v| format!("&SPV_{}.0", v.name.to_uppercase()),
    );
    table_fn(
        &mut code,
        "Number of storage-buffer bindings (set 0, bindings 0..n).",
        "binding_count(self) -> u32",
        &|v| metas[&v.file].bindings.to_string(),
    );
    table_fn(
        &mut code,
        "Push-constant block size in bytes.",
        "push_size(self) -> u32",
        &|v| metas[&v.file].push.to_string(),
    );
    table_fn(
        &mut code,
        "Workgroup size (`WG_X`, `WG_Y`, `WG_Z`).",
        "workgroup(self) -> [u32; 3]",
        &|v| format!("{:?}", workgroup_of(v, &metas[&v.file])),
    );
    code.push_str("}\n");

    std::fs::write(out_dir.join("shaders.rs"), code).map_err(|e| e.to_string())?;
    Ok(())
}

/// Parses `shaders/variants.txt`; adds a default variant for files without rows.
fn parse_variants(table: &str, sources: &[String]) -> Result<Vec<Variant>, String> {
    let mut out: Vec<Variant> = Vec::new();
    for (lineno, line) in table.lines().enumerate() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap().to_string();
        let at = format!("shaders/variants.txt:{}", lineno + 1);
        let file = words
            .next()
            .ok_or_else(|| format!("{at}: `{name}` has no source file"))?
            .to_string();
        if !sources.contains(&file) {
            return Err(format!(
                "{at}: `{name}` names missing source shaders/{file}"
            ));
        }
        let defines = words
            .map(|d| match d.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (d.to_string(), None),
            })
            .collect();
        out.push(Variant {
            name,
            file,
            defines,
        });
    }
    for file in sources {
        if !out.iter().any(|v| &v.file == file) {
            out.push(Variant {
                name: file.trim_end_matches(".comp").to_string(),
                file: file.clone(),
                defines: Vec::new(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for v in &out {
        let ok = v
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && v.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!("variant name `{}` is not an identifier", v.name));
        }
        if !seen.insert(v.name.to_uppercase()) {
            return Err(format!(
                "variant name `{}` is used twice (names are case-insensitive)",
                v.name
            ));
        }
    }
    Ok(out)
}

/// Reads the `// bindings:`, `// push:` and `// workgroup:` header comments.
fn parse_meta(file: &str, text: &str) -> Result<Meta, String> {
    let mut bindings = None;
    let mut push = None;
    let mut workgroup = [64, 1, 1];
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("//") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let nums: Result<Vec<u32>, _> = value.split_whitespace().map(str::parse).collect();
        let bad = || format!("shaders/{file}: bad header line `{}`", line.trim());
        match key.trim() {
            "bindings" => bindings = Some(*nums.map_err(|_| bad())?.first().ok_or_else(bad)?),
            "push" => push = Some(*nums.map_err(|_| bad())?.first().ok_or_else(bad)?),
            "workgroup" => {
                let n = nums.map_err(|_| bad())?;
                if n.is_empty() || n.len() > 3 {
                    return Err(bad());
                }
                for (i, x) in n.iter().enumerate() {
                    workgroup[i] = *x;
                }
            }
            _ => {}
        }
    }
    let bindings =
        bindings.ok_or_else(|| format!("shaders/{file}: missing `// bindings: N` header"))?;
    let push = push.ok_or_else(|| format!("shaders/{file}: missing `// push: BYTES` header"))?;
    if push % 4 != 0 {
        return Err(format!(
            "shaders/{file}: push size {push} is not a multiple of 4"
        ));
    }
    Ok(Meta {
        bindings,
        push,
        workgroup,
    })
}

/// The header workgroup size, overridden by a variant's own `WG_X/Y/Z` defines.
fn workgroup_of(v: &Variant, meta: &Meta) -> [u32; 3] {
    let mut wg = meta.workgroup;
    for (k, val) in &v.defines {
        let slot = match k.as_str() {
            "WG_X" => 0,
            "WG_Y" => 1,
            "WG_Z" => 2,
            _ => continue,
        };
        if let Some(n) = val.as_deref().and_then(|s| s.parse().ok()) {
            wg[slot] = n;
        }
    }
    wg
}

/// Compiles one variant; returns its SPIR-V and the include files it read.
fn compile(
    compiler: &shaderc::Compiler,
    shader_dir: &Path,
    v: &Variant,
    meta: &Meta,
) -> Result<(Vec<u8>, BTreeSet<PathBuf>), String> {
    let path = shader_dir.join(&v.file);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let includes = RefCell::new(BTreeSet::new());
    let mut opts = shaderc::CompileOptions::new()
        .map_err(|e| format!("cannot create shaderc options: {e}"))?;
    opts.set_target_env(
        shaderc::TargetEnv::Vulkan,
        shaderc::EnvVersion::Vulkan1_2 as u32,
    );
    opts.set_optimization_level(shaderc::OptimizationLevel::Performance);
    opts.set_warnings_as_errors();
    let wg = workgroup_of(v, meta);
    for (i, k) in ["WG_X", "WG_Y", "WG_Z"].iter().enumerate() {
        if !v.defines.iter().any(|(d, _)| d == k) {
            opts.add_macro_definition(k, Some(&wg[i].to_string()));
        }
    }
    for (k, val) in &v.defines {
        opts.add_macro_definition(k, val.as_deref());
    }
    opts.set_include_callback(|requested, kind, requester, _depth| {
        let base = match kind {
            shaderc::IncludeType::Relative => Path::new(requester)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| shader_dir.to_path_buf()),
            shaderc::IncludeType::Standard => shader_dir.to_path_buf(),
        };
        let mut candidate = base.join(requested);
        if !candidate.exists() {
            candidate = shader_dir.join(requested);
        }
        let content = std::fs::read_to_string(&candidate)
            .map_err(|e| format!("#include \"{requested}\" from {requester}: {e}"))?;
        includes.borrow_mut().insert(candidate.clone());
        Ok(shaderc::ResolvedInclude {
            resolved_name: candidate.display().to_string(),
            content,
        })
    });
    let artifact = compiler
        .compile_into_spirv(
            &source,
            shaderc::ShaderKind::Compute,
            &path.display().to_string(),
            "main",
            Some(&opts),
        )
        .map_err(|e| format!("variant `{}` (shaders/{}): {e}", v.name, v.file))?;
    drop(opts);
    let spv = artifact.as_binary_u8().to_vec();
    Ok((spv, includes.into_inner()))
}
