//! libFuzzer target: any byte string through the GGUF reader (`GgufFile::from_bytes`), the
//! model loader (`Model::from_file`: every hyper-parameter checked against the tensor
//! shapes) and, when it loads, one CPU forward pass of two tokens. Errors are fine; a
//! panic, an abort or an allocation beyond libFuzzer's `-rss_limit_mb` is a finding. The
//! bounded in-tree loop over mutated micro models is tests/fuzz_loader.rs; this is its
//! open-ended form. Run: `cargo +nightly fuzz run gguf_loader` (docs/testing.md).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::gguf::GgufFile;
use vkgraph::model::Model;
use vkgraph::sched::session::{Session, SessionOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz", data.to_vec()) else {
        return;
    };
    let Ok(model) = Model::from_file(file) else {
        return;
    };
    let model = Arc::new(model);
    let n_vocab = model.hp.n_vocab;
    let mut s = Session::new(
        model.clone(),
        vec![Box::new(CpuBackend::new(model))],
        SessionOptions {
            n_ctx: 8,
            ..Default::default()
        },
    );
    if let Ok(logits) = s.forward(&[1, 2], false) {
        assert_eq!(logits.len(), n_vocab, "logits of a loaded input");
    }
});
