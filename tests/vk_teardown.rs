//! Every Vulkan object is owned by one value whose Drop frees it, and logical devices do
//! not pile up: a backend opens the process's shared device for its settings
//! (`Device::shared`, kept until exit), so opening and dropping backends again and again
//! leaves exactly one device alive (a leak here once exhausted the NVIDIA driver in a long
//! test run). A test binary of its own, so nothing else creates devices concurrently.

mod models;

use vkgraph::backend::vulkan::{
    enumerate_devices, live_device_count, ContextOptions, VulkanBackend,
};
use vkgraph::passes::QkvMode;
use vkgraph::sched::session::{Session, SessionOptions};

#[test]
fn backends_share_one_device_and_do_not_pile_up() {
    let devs = enumerate_devices().expect("Vulkan loader");
    assert!(!devs.is_empty(), "no Vulkan device: CI must have lavapipe");
    let m = models::tiny_model("llama", "q4_0");
    for (opened, c) in devs.into_iter().enumerate() {
        let want = opened + 1; // one shared device per physical device opened so far
        for mode in [QkvMode::Off, QkvMode::Auto] {
            let vk = VulkanBackend::new(
                m.clone(),
                &ContextOptions {
                    device_index: Some(c.index),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(live_device_count(), want, "one shared device, reused");
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
                want,
                "[Vulkan/{}] qkv={mode}: devices piled up or the shared one was destroyed",
                c.short_name()
            );
        }
    }
}
