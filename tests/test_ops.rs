//! The `vkgraph test-ops` suite (`vkgraph::testops`) on every Vulkan device under the
//! validation layer: every case passes, nothing is unsupported except the integer-dot
//! mat-vec on a device without integer dot products (said loudly), no validation message.
//! One suite serves CI and users of new drivers (`vkgraph test-ops --device I`).

mod common;

use vkgraph::testops;

#[test]
fn every_op_case_passes_on_every_device() {
    assert!(testops::cases().len() >= 500, "the suite shrank");
    for gpu in common::devices() {
        let mut out = Vec::new();
        let (pass, fail, unsup) = testops::run(&gpu.ctx, &gpu.label, None, false, &mut out);
        let text = String::from_utf8_lossy(&out);
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(": FAIL") || l.contains(": unsupported"))
            .collect();
        let only_vecq = bad
            .iter()
            .all(|l| l.contains("mul_mat_vecq(") && l.contains("unsupported"));
        assert!(
            fail == 0 && only_vecq,
            "[{}] {pass} passed:\n{}",
            gpu.label,
            bad.join("\n")
        );
        if unsup > 0 {
            eprintln!(
                "!!! [{}] {unsup} integer-dot cases NOT TESTED (device lacks them)",
                gpu.label
            );
        }
        eprintln!(
            "[{}] test-ops: {pass} passed, {fail} failed, {unsup} unsupported",
            gpu.label
        );
        gpu.assert_clean("test-ops");
    }
}
