//! The whole-file log-segment reader. The first byte picks the mode: bit 0 clear, the rest
//! is written to the file as it is; set, the rest is a sequence of `[u16 length][payload]`
//! that becomes records with correct checksums (`[u32 length][u32 payload CRC][u32 CRC of
//! those 8 bytes]`) behind a valid header, so that the fuzzer reaches the record decoder
//! past the CRCs, and the second byte, when non-zero, cuts that many bytes off the end (a
//! torn tail). Bit 1 reads the file as the last segment. Any panic is a bug; the valid
//! prefix never exceeds the file, and covers all of it when the tail is not torn.
#![no_main]

use std::path::PathBuf;

use gateway::persist::wal::{read_segment, SEGMENT_MAGIC};
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("gateway-fuzz-wal-{}", std::process::id()))
}

fn framed(input: &[u8]) -> Vec<u8> {
    let Some((&cut, mut rest)) = input.split_first() else {
        return SEGMENT_MAGIC.to_vec();
    };
    let mut file = SEGMENT_MAGIC.to_vec();
    while rest.len() >= 2 {
        let (len, tail) = rest.split_at(2);
        let len = usize::from(u16::from_le_bytes([len[0], len[1]])).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        let mut header = (payload.len() as u32).to_le_bytes().to_vec();
        header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let header_crc = crc32fast::hash(&header);
        file.extend_from_slice(&header);
        file.extend_from_slice(&header_crc.to_le_bytes());
        file.extend_from_slice(payload);
        rest = tail;
    }
    let keep = file.len().saturating_sub(usize::from(cut));
    file.truncate(keep);
    file
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        framed(rest)
    };
    let path = scratch();
    std::fs::write(&path, &file).expect("write the scratch file");
    if let Ok(contents) = read_segment(&path, mode & 2 != 0) {
        assert!(contents.valid_len <= file.len() as u64);
        if !contents.torn_tail {
            assert_eq!(contents.valid_len, file.len() as u64);
        }
    }
    let _ = std::fs::remove_file(&path);
});
