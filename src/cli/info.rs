//! `vkgraph info M.gguf`: metadata summary, tensor count by type and the per-layer
//! types of the sibling matmuls (the input to every fuse/reorder decision).

use std::collections::BTreeMap;
use std::path::Path;

use crate::gguf::GgufFile;
use crate::model::HParams;
use crate::Result;

pub fn info(path: &Path) -> Result<()> {
    let f = GgufFile::open(path)?;
    println!(
        "# {} (GGUF v{}, {} tensors, {} metadata keys)",
        path.display(),
        f.version,
        f.tensors.len(),
        f.metadata.len()
    );
    print!("{}", f.summary());
    let mut by_type: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for t in &f.tensors {
        let e = by_type.entry(t.ty.name().to_string()).or_default();
        e.0 += 1;
        e.1 += t.nbytes;
    }
    println!("\n## tensors by type");
    for (ty, (n, bytes)) in &by_type {
        println!(
            "{ty:>6}: {n:4} tensors, {:9.2} MiB",
            *bytes as f64 / (1 << 20) as f64
        );
    }
    match HParams::from_gguf(&f) {
        Ok(hp) => {
            println!("\n## hyper-parameters\n{hp:?}");
            println!("\n## per-layer matmul types");
            println!(
                "| layer | attn_q | attn_k | attn_v | attn_output | ffn_gate | ffn_up | ffn_down |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for il in 0..hp.n_layer {
                let ty = |s: &str| {
                    f.tensor(&format!("blk.{il}.{s}.weight"))
                        .map_or("-".to_string(), |t| t.ty.name().to_string())
                };
                println!(
                    "| {il} | {} | {} | {} | {} | {} | {} | {} |",
                    ty("attn_q"),
                    ty("attn_k"),
                    ty("attn_v"),
                    ty("attn_output"),
                    ty("ffn_gate"),
                    ty("ffn_up"),
                    ty("ffn_down")
                );
            }
        }
        Err(e) => println!("\n(not a model vkgraph runs: {e})"),
    }
    Ok(())
}
