//! Under scripts/test-aarch64.sh, checks that qemu really emulates the CPU model the run claims, so the
//! "-cpu max" run takes the dotprod/i8mm kernel paths and the "-cpu cortex-a53" run the fallbacks.
//! Outside those runs (FLINT_QEMU_CPU unset) there is nothing to check.

#[cfg(target_arch = "aarch64")]
#[test]
fn qemu_cpu_model_has_the_expected_features() {
    let Ok(cpu) = std::env::var("FLINT_QEMU_CPU") else {
        return;
    };
    let model = cpu.split(',').next().unwrap_or("");
    let found = [
        (
            "dotprod",
            std::arch::is_aarch64_feature_detected!("dotprod"),
        ),
        ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
        ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
        ("sve", std::arch::is_aarch64_feature_detected!("sve")),
    ];
    let want: &[&str] = match model {
        "max" => &["dotprod", "i8mm", "fp16", "sve"],
        "cortex-a53" => &[],
        "cortex-a55" | "cortex-a76" => &["dotprod", "fp16"],
        other => panic!("FLINT_QEMU_CPU={other}: add this model's features to the test"),
    };
    for (name, has) in found {
        assert_eq!(
            has,
            want.contains(&name),
            "qemu -cpu {cpu}: {name} detected = {has}"
        );
    }
    assert!(std::arch::is_aarch64_feature_detected!("neon"));
}
