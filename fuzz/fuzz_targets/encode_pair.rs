#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewardkit_fuzz::encode_pair(data));
