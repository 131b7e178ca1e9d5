//! [`Outcome`]: the small vocabulary every platform's states are normalised to, and how each looks
//! in Slack. Routes filter on it (`outcomes = ["failed", "needs_approval"]`).

use serde::Deserialize;

/// What an event means for the people watching the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A run, update, deployment or build finished well.
    Succeeded,
    /// It failed (or was rejected by a mandatory policy).
    Failed,
    /// It was queued or is running.
    Started,
    /// It is waiting for someone to confirm or approve it.
    NeedsApproval,
    /// Drift detection found infrastructure that no longer matches its code.
    Drift,
    /// Anything else worth a line: stack created, version revoked, run discarded...
    Info,
}

impl Outcome {
    /// The attachment colour: Slack's own good / warning / danger, and blue for info.
    pub fn color(self) -> &'static str {
        match self {
            Self::Succeeded => "#2eb886",
            Self::Failed => "#a30200",
            Self::Started | Self::NeedsApproval | Self::Drift => "#daa038",
            Self::Info => "#439fe0",
        }
    }

    /// The emoji code leading the header and the fallback text.
    pub fn emoji(self) -> &'static str {
        match self {
            Self::Succeeded => ":white_check_mark:",
            Self::Failed => ":x:",
            Self::Started => ":hourglass_flowing_sand:",
            Self::NeedsApproval => ":raised_hand:",
            Self::Drift => ":warning:",
            Self::Info => ":information_source:",
        }
    }

    /// The name used in configs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Started => "started",
            Self::NeedsApproval => "needs_approval",
            Self::Drift => "drift",
            Self::Info => "info",
        }
    }

    /// The outcome of a generic status word (`succeeded`, `failed`, `running`, `cancelled`...),
    /// as Pulumi and Nullstone use them. Unknown words are [`Outcome::Info`].
    pub fn from_status(status: &str) -> Self {
        match status.to_ascii_lowercase().replace('_', "-").as_str() {
            "succeeded" | "success" | "completed" | "complete" | "finished" | "ok" => {
                Self::Succeeded
            }
            "failed" | "failure" | "error" | "errored" => Self::Failed,
            "running" | "in-progress" | "queued" | "accepted" | "pending" | "started"
            | "not-started" => Self::Started,
            "needs-approval" | "awaiting-approval" | "pending-approval" => Self::NeedsApproval,
            _ => Self::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_normalise() {
        assert_eq!(Outcome::from_status("succeeded"), Outcome::Succeeded);
        assert_eq!(Outcome::from_status("FAILED"), Outcome::Failed);
        assert_eq!(Outcome::from_status("in_progress"), Outcome::Started);
        assert_eq!(
            Outcome::from_status("needs-approval"),
            Outcome::NeedsApproval
        );
        assert_eq!(Outcome::from_status("cancelled"), Outcome::Info);
    }
}
