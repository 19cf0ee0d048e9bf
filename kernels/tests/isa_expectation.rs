//! The run-time ISA choice matches what the CI runner says the (emulated) CPU has.
//!
//! `.ci/neon.sh` runs the aarch64 tests under `qemu-aarch64 -cpu max` with FOVEA_EXPECT_DOTPROD=1
//! and under `-cpu cortex-a72` (ARMv8.0, no `sdot`) with FOVEA_EXPECT_DOTPROD=0. The second run
//! proves the detected table is the plain NEON one: an `sdot` there would be SIGILL, so the
//! other tests passing under that CPU also prove none was executed.

use fovea_kernels::isa::Isa;
use fovea_kernels::table::QuantKernels;

/// FOVEA_EXPECT_DOTPROD as a bool; None when unset (a plain `cargo test`).
fn expected_dotprod() -> Option<bool> {
    match std::env::var("FOVEA_EXPECT_DOTPROD").ok()?.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        other => panic!("FOVEA_EXPECT_DOTPROD must be 0 or 1, not {other:?}"),
    }
}

#[test]
fn detected_table_matches_the_cpu_the_runner_promised() {
    let Some(expect) = expected_dotprod() else {
        eprintln!("NOTICE: FOVEA_EXPECT_DOTPROD unset: no CPU expectation to check (set by .ci/neon.sh)");
        return;
    };
    if cfg!(not(target_arch = "aarch64")) {
        panic!("FOVEA_EXPECT_DOTPROD is set, but this is not an aarch64 build");
    }
    let detected = QuantKernels::detect();
    assert_eq!(detected.isa, Isa::Neon, "detected {detected:?}");
    assert_eq!(detected.dotprod, expect, "detected {detected:?}, expected dotprod = {expect}");
    let by_name = QuantKernels::for_isa(Isa::from_name("neon").unwrap()).unwrap();
    assert_eq!((by_name.isa, by_name.dotprod), (Isa::Neon, expect), "FOVEA_ISA=neon picks the same");
    for (label, table) in QuantKernels::variants() {
        let want = match label {
            "scalar" | "neon" => true,
            "neon-dotprod" => expect,
            _ => false, // the x86 levels
        };
        assert_eq!(table.is_ok(), want, "{label}: {table:?}");
    }
}
