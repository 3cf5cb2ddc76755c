//! The task's value objects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::{TextError, bounded};

/// A task title: 1 to 200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

/// A checklist item's text: 1 to 200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistText(String);

/// A task description: up to 10,000 characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskDescription(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// When the trimmed title is empty or longer than 200 characters.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS, false).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ChecklistText {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// When the trimmed text is empty or longer than 200 characters.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS, false).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TaskDescription {
    pub const MAX_CHARS: usize = 10_000;

    /// # Errors
    /// When the trimmed description is longer than 10,000 characters.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS, true).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
}

/// How urgent a task is, in increasing order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: {expected}")]
pub struct UnknownVariant {
    expected: &'static str,
}

impl TaskStatus {
    pub const ALL: [Self; 3] = [Self::Todo, Self::InProgress, Self::Done];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Done => "done",
        }
    }

    /// # Errors
    /// When `raw` names no status.
    pub fn parse(raw: &str) -> Result<Self, UnknownVariant> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or(UnknownVariant {
                expected: "todo, in_progress, done",
            })
    }
}

impl Priority {
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Urgent];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }

    /// The priority's rank, for storage and sorting (low = 0 … urgent = 3).
    #[must_use]
    pub const fn rank(self) -> i16 {
        self as i16
    }

    /// # Errors
    /// When `raw` names no priority.
    pub fn parse(raw: &str) -> Result<Self, UnknownVariant> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.as_str() == raw)
            .ok_or(UnknownVariant {
                expected: "low, medium, high, urgent",
            })
    }

    /// The priority of a stored rank.
    #[must_use]
    pub fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.rank() == rank)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(TaskTitle::parse("  Ship it ").unwrap().as_str(), "Ship it");
        assert_eq!(TaskTitle::parse("   "), Err(TextError::Empty));
        assert!(TaskTitle::parse(&"x".repeat(200)).is_ok());
        assert_eq!(
            TaskTitle::parse(&"x".repeat(201)),
            Err(TextError::TooLong { max: 200 })
        );
    }

    #[test]
    fn a_description_may_be_empty_but_not_over_10000_characters() {
        assert_eq!(TaskDescription::parse("  ").unwrap().as_str(), "");
        assert!(TaskDescription::parse(&"é".repeat(10_000)).is_ok());
        assert!(TaskDescription::parse(&"é".repeat(10_001)).is_err());
    }

    #[test]
    fn checklist_text_is_bounded_like_a_title() {
        assert_eq!(ChecklistText::parse(""), Err(TextError::Empty));
        assert!(ChecklistText::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn statuses_and_priorities_round_trip_through_their_names() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()), Ok(status));
        }
        for priority in Priority::ALL {
            assert_eq!(Priority::parse(priority.as_str()), Ok(priority));
            assert_eq!(Priority::from_rank(priority.rank()), Some(priority));
        }
        assert!(TaskStatus::parse("blocked").is_err());
        assert!(Priority::parse("critical").is_err());
    }

    #[test]
    fn priorities_order_from_low_to_urgent_and_default_to_medium() {
        assert!(Priority::Low < Priority::Medium && Priority::High < Priority::Urgent);
        assert_eq!(Priority::default(), Priority::Medium);
    }
}
