//! A small deterministic generator (xorshift) for the unit tests that draw random stores
//! or changes, so that a failure replays with its seed.

/// Xorshift state; any nonzero seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// A number below `n` (not quite uniform, which the tests do not need).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
