#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewardkit_fuzz::chat_template(data));
