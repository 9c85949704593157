//! Every Vulkan object is owned by one value whose Drop frees it: after a backend and
//! its session are dropped, no logical device is left alive (a leak here exhausted the
//! NVIDIA driver in a long test run). A test binary of its own, so nothing else creates
//! devices concurrently.

mod models;

use vkgraph::backend::vulkan::{
    enumerate_devices, live_device_count, ContextOptions, VulkanBackend,
};
use vkgraph::passes::QkvMode;
use vkgraph::sched::session::{Session, SessionOptions};

#[test]
fn backends_tear_down_their_devices() {
    let devs = enumerate_devices().expect("Vulkan loader");
    assert!(!devs.is_empty(), "no Vulkan device: CI must have lavapipe");
    let m = models::tiny_model("llama", "q4_0");
    for c in devs {
        for mode in [QkvMode::Off, QkvMode::Auto] {
            let vk = VulkanBackend::new(
                m.clone(),
                &ContextOptions {
                    device_index: Some(c.index),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(live_device_count(), 1);
            let mut s = Session::new(
                m.clone(),
                vec![Box::new(vk)],
                SessionOptions {
                    qkv: mode,
                    n_ctx: 16,
                    ..Default::default()
                },
            );
            s.forward(&models::prompt(3), false).unwrap();
            s.forward(&[1], false).unwrap();
            drop(s);
            assert_eq!(
                live_device_count(),
                0,
                "[Vulkan/{}] qkv={mode}: device leaked",
                c.short_name()
            );
        }
    }
}
