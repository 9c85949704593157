//! Compiles shaders/ to SPIR-V (filled in by the Vulkan issue).
fn main() {
    let _ = shaderc::Compiler::new();
}
