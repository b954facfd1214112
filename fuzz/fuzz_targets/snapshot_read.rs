//! The whole-file snapshot reader. The first byte picks the mode: even, the rest is
//! written to the file as it is; odd, the rest is `[u64 next segment]` then a sequence of
//! `[u16 length][group block]`, framed as a snapshot with the right count and checksum (so
//! that the fuzzer reaches the group decoder past the CRC). Any panic is a bug; a
//! snapshot that reads has as many groups as it says.
#![no_main]

use std::path::PathBuf;

use gateway::persist::snapshot::{read, SNAPSHOT_MAGIC};
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("gateway-fuzz-snapshot-{}", std::process::id()))
}

fn framed(input: &[u8]) -> (Vec<u8>, u64) {
    let mut next = [0u8; 8];
    let n = input.len().min(8);
    next[..n].copy_from_slice(&input[..n]);
    let mut rest = &input[n..];
    let mut blocks = Vec::new();
    while rest.len() >= 2 {
        let (len, tail) = rest.split_at(2);
        let len = usize::from(u16::from_le_bytes([len[0], len[1]])).min(tail.len());
        let (block, tail) = tail.split_at(len);
        blocks.push(block);
        rest = tail;
    }
    let mut file = SNAPSHOT_MAGIC.to_vec();
    file.extend_from_slice(&next);
    file.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
    for block in &blocks {
        file.extend_from_slice(&(block.len() as u32).to_le_bytes());
        file.extend_from_slice(block);
    }
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    (file, blocks.len() as u64)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (file, count) = if mode & 1 == 0 {
        (rest.to_vec(), None)
    } else {
        let (file, count) = framed(rest);
        (file, Some(count))
    };
    let path = scratch();
    std::fs::write(&path, &file).expect("write the scratch file");
    if let (Ok(Some(snapshot)), Some(count)) = (read(&path), count) {
        assert_eq!(snapshot.groups.len() as u64, count);
    }
    let _ = std::fs::remove_file(&path);
});
