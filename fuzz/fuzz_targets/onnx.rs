#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // libfuzzer's hook aborts on every panic, even one the import catches: keep
        // that for panics outside tract, whose assertions the import turns into errors.
        std::panic::set_hook(Box::new(|info| {
            if !secc_compiler::frontend::onnx::is_tract_panic(info) {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    },
    |data: &[u8]| secc_fuzz::onnx(data)
);
