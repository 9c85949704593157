//! Backends that evaluate graphs: the CPU reference ([`cpu`]) and Vulkan ([`vulkan`]).

pub mod cpu;
pub mod vulkan;
