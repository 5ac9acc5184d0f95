//! The contract every lifecycle in spectask follows: one `apply` function that takes
//! the current state and an event and returns the next state or a typed error.
//!
//! Nothing in spectask writes a status without passing through `apply`; the store
//! persists what `apply` returns and nothing else.

use std::fmt::Debug;

/// An illegal or impossible status change. It carries enough to tell a person
/// exactly what was refused and why, and it never implies that anything changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a {lifecycle} that is {from}{}", reason_suffix(.reason))]
pub struct TransitionError {
    pub lifecycle: &'static str,
    pub from: &'static str,
    pub event: &'static str,
    pub reason: Option<&'static str>,
}

fn reason_suffix(reason: &Option<&'static str>) -> String {
    reason.map(|r| format!(" ({r})")).unwrap_or_default()
}

/// A state machine: states are values, events are values, and `apply` is the only
/// way from one state to the next.
pub trait Lifecycle: Sized + Clone + Debug + PartialEq {
    type Event: Clone + Debug + PartialEq;

    /// Name used in error messages ("spec task", "work session", ...).
    const NAME: &'static str;

    /// The next state, or why the event is refused in this state.
    fn apply(self, event: Self::Event) -> Result<Self, TransitionError>;

    /// The stable snake_case name of the state, as stored and shown in the API.
    fn status_name(&self) -> &'static str;

    /// Builds the error for `event` in this state.
    fn refuse(&self, event: &'static str) -> TransitionError {
        TransitionError {
            lifecycle: Self::NAME,
            from: self.status_name(),
            event,
            reason: None,
        }
    }
}

/// Declares a field-less status enum with its snake_case names, parsing and the list
/// of every value (the lifecycle tests enumerate it).
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::domain::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::domain::UnknownValue {
                        kind: stringify!($name),
                        value: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}
pub(crate) use status_enum;

#[cfg(test)]
pub(crate) mod testing {
    use super::Lifecycle;

    /// Checks a lifecycle against its complete table of legal transitions: every
    /// listed (state, event) pair gives the listed next state, and every pair that is
    /// not listed is refused with an error naming the state it was refused in.
    pub fn check_table<L: Lifecycle>(
        states: &[L],
        events: &[L::Event],
        legal: &[(L, L::Event, L)],
    ) {
        for (from, event, to) in legal {
            let got = from.clone().apply(event.clone());
            assert_eq!(got.as_ref(), Ok(to), "{from:?} + {event:?}");
        }
        let mut refused = 0;
        for state in states {
            for event in events {
                let listed = legal.iter().any(|(f, e, _)| f == state && e == event);
                if listed {
                    continue;
                }
                match state.clone().apply(event.clone()) {
                    Ok(next) => {
                        panic!("{state:?} + {event:?} gave {next:?} but is not in the table")
                    }
                    Err(err) => {
                        assert_eq!(err.from, state.status_name());
                        assert_eq!(err.lifecycle, L::NAME);
                        refused += 1;
                    }
                }
            }
        }
        assert!(
            refused > 0,
            "a lifecycle with no illegal transitions is suspicious"
        );
    }
}
