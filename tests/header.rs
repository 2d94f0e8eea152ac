//! The committed C header must match what cbindgen generates from src/ffi.
//! Run `make header` (or this test with RK_BLESS=1) to regenerate it.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        // Only the ffi module: constants elsewhere in the crate are not C API.
        .with_src(root.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("utf8 header");
    let path = root.join("include/rewardkit.h");
    if std::env::var_os("RK_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/rewardkit.h is out of date with src/ffi: run `make header` and commit the result"
    );
}
