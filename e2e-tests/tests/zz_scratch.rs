use e2e_tests::host::Host;
#[test]
fn scratch() {
    let wasm = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.wasm")).unwrap();
    let host = Host::builder()
        .wasm_bytes(wasm.clone())
        .allow_unannotated()
        .track_peak_memory()
        .execution_timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let t = std::time::Instant::now();
    let r1 = host.instance().map(|_| ());
    eprintln!(
        "{r1:?} {:?} peak={:?}",
        t.elapsed(),
        host.peak_memory_bytes()
    );
}
