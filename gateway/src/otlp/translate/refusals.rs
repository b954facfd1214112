//! The refused data points of an export and the first few reasons, as `partial_success`
//! reports them: bounded in number and length however much a client sends.

/// How many distinct reasons a partial success names; the count covers them all.
const MAX_MESSAGES: usize = 5;
/// The longest reason kept, in bytes.
pub(super) const MAX_MESSAGE_BYTES: usize = 512;

/// Data points that were refused, with the first few reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// How many.
    pub points: u64,
    messages: Vec<String>,
    more: usize,
}

impl Refusals {
    /// Counts `points` refused for `reason` (a reason without points is a warning).
    pub fn add(&mut self, points: u64, reason: impl Into<String>) {
        self.points = self.points.saturating_add(points);
        let mut reason = reason.into();
        // A reason quotes client data (names, keys): the answer stays small however long.
        if reason.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        if self.messages.contains(&reason) {
            return;
        }
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(reason);
        } else {
            self.more += 1;
        }
    }

    /// Whether anything was refused or warned about.
    pub fn is_empty(&self) -> bool {
        self.points == 0 && self.messages.is_empty()
    }

    /// The reasons as one message.
    pub fn message(&self) -> String {
        let mut message = self.messages.join("; ");
        if self.more > 0 {
            message.push_str(&format!(" (and {} more reasons)", self.more));
        }
        message
    }
}
