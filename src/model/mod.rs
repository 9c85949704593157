//! Model graph builders (stub).

pub mod quant_mix;
