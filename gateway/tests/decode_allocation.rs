//! Damaged persistence data costs no more memory than its size: a count read from a
//! snapshot block reserves room for no more items than the bytes left could hold. The
//! decoding runs in a child process whose address space is limited (`ulimit -v`), where
//! reserving room for a damaged count's worth of items would abort it.

use std::process::Command;

use gateway::persist::codec::decode_group;

/// The address space the decoding child may use: far more than the input and the
/// decoder's work, less than room for a damaged count's worth of items.
const CHILD_MEMORY_KIB: u64 = 512 * 1024;
/// The bytes after a damaged count (each count claims this many items).
const REST: usize = 32 << 20;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A group block `{job="j"}` with one gauge family `m`, cut where its one series'
/// `what` count comes (see `persist/codec`).
fn block_up_to(what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 3);
    for s in ["job", "j", "m"] {
        varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&[1, 0, 1]); // key: one label, job="j"
    out.extend_from_slice(&1.0f64.to_le_bytes()); // push time
    out.extend_from_slice(&0.0f64.to_le_bytes()); // failure time
    out.push(1); // one family
    out.extend_from_slice(&[2, 0, 1]); // name "m", no help, gauge
    out.extend_from_slice(&1.0f64.to_le_bytes()); // pushed at
    if what == "series" {
        return out;
    }
    out.push(1); // one series
    if what == "labels" {
        return out;
    }
    out.push(0); // no labels of its own
    out.push(1); // gauge value
    out.extend_from_slice(&2.0f64.to_le_bytes());
    out.extend_from_slice(&[0, 1]); // no timestamp, extras
    out.extend_from_slice(&[0, 0]); // no created timestamp, no exemplar
    out
}

/// Decodes blocks whose counts claim as many items as there are bytes left (which are
/// not items): each must fail with an error. Run by the test below, under the limit.
#[test]
#[ignore = "run by a_damaged_count_reserves_no_more_than_the_input_could_hold"]
fn decode_damaged_counts() {
    for what in ["series", "labels", "bucket exemplars"] {
        let mut block = block_up_to(what);
        varint(&mut block, REST as u64);
        block.resize(block.len() + REST, 0xff);
        assert!(decode_group(&block).is_err(), "{what}: decoded");
    }
}

#[test]
fn a_damaged_count_reserves_no_more_than_the_input_could_hold() {
    let exe = std::env::current_exe().expect("test binary");
    let script = format!(
        "ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" --ignored --exact decode_damaged_counts \
         --test-threads=1"
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .arg(&exe)
        .output()
        .expect("sh runs");
    let output = String::from_utf8_lossy(&child.stdout).into_owned()
        + &String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{:?}:\n{output}", child.status);
    assert!(output.contains("1 passed"), "{output}");
}
