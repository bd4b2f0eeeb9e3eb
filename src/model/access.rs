//! Roles, actions and token scopes.
//!
//! Roles per feed: `pull` < `push` < `promote` / `delete` < `admin`. `promote` and `delete`
//! are siblings, so roles are capability sets and "the lesser of two roles" is their
//! intersection: what an API key may do is what it was granted *and* what its owner may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Something a caller wants to do in a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pull,
    Push,
    Promote,
    Delete,
    Admin,
}

impl Action {
    const ALL: [Self; 5] = [
        Self::Pull,
        Self::Push,
        Self::Promote,
        Self::Delete,
        Self::Admin,
    ];

    fn bit(self) -> u8 {
        match self {
            Self::Pull => 1,
            Self::Push => 2,
            Self::Promote => 4,
            Self::Delete => 8,
            Self::Admin => 16,
        }
    }

    /// The name used in token scopes.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Promote => "promote",
            Self::Delete => "delete",
            Self::Admin => "admin",
        }
    }

    /// Parses a scope action; `*` means every action.
    #[must_use]
    pub fn parse_scope(s: &str) -> Vec<Self> {
        if s == "*" {
            return Self::ALL.to_vec();
        }
        Self::ALL.into_iter().filter(|a| a.as_str() == s).collect()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role granted on a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Pull,
    Push,
    Promote,
    Delete,
    Admin,
}

impl Role {
    /// The role's name, which is the name of the highest action it allows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.top().as_str()
    }

    fn top(self) -> Action {
        match self {
            Self::Pull => Action::Pull,
            Self::Push => Action::Push,
            Self::Promote => Action::Promote,
            Self::Delete => Action::Delete,
            Self::Admin => Action::Admin,
        }
    }

    /// What the role allows.
    #[must_use]
    pub fn caps(self) -> Caps {
        use Action as A;
        let actions: &[Action] = match self {
            Self::Pull => &[A::Pull],
            Self::Push => &[A::Pull, A::Push],
            Self::Promote => &[A::Pull, A::Push, A::Promote],
            Self::Delete => &[A::Pull, A::Push, A::Delete],
            Self::Admin => &Action::ALL,
        };
        Caps(actions.iter().fold(0, |bits, a| bits | a.bit()))
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Pull,
            Self::Push,
            Self::Promote,
            Self::Delete,
            Self::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("role {s:?} is unknown: use pull, push, promote, delete or admin"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of allowed actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Self = Self(0);
    pub const ALL: Self = Self(31);

    #[must_use]
    pub fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Exactly `actions`.
    #[must_use]
    pub fn of(actions: &[Action]) -> Self {
        Self(actions.iter().fold(0, |bits, a| bits | a.bit()))
    }

    /// What both allow.
    #[must_use]
    pub fn meet(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// What either allows.
    #[must_use]
    pub fn join(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The allowed actions among `asked`.
    #[must_use]
    pub fn filter(self, asked: &[Action]) -> Vec<Action> {
        let mut out: Vec<Action> = asked.iter().copied().filter(|a| self.allows(*a)).collect();
        out.dedup();
        out
    }
}

/// One scope of a token request: `repository:prod/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses a scope; `None` when it is not `type:name:actions`. The name may hold `:` (a
    /// port in a registry host), so type is the first field and actions the last.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_form_the_documented_order() {
        let pull = Role::Pull.caps();
        let push = Role::Push.caps();
        assert!(
            push.allows(Action::Pull) && push.allows(Action::Push) && !push.allows(Action::Delete)
        );
        assert!(!pull.allows(Action::Push));
        assert!(
            Role::Promote.caps().allows(Action::Promote)
                && !Role::Promote.caps().allows(Action::Delete)
        );
        assert!(
            Role::Delete.caps().allows(Action::Delete)
                && !Role::Delete.caps().allows(Action::Promote)
        );
        assert_eq!(Role::Admin.caps(), Caps::ALL);
        // Promote and delete are siblings: what both allow is push.
        assert_eq!(Role::Promote.caps().meet(Role::Delete.caps()), push);
    }

    #[test]
    fn scopes_parse_with_ports_and_star() {
        let s = Scope::parse("repository:prod/team/app:pull,push").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "prod/team/app")
        );
        assert_eq!(s.actions, ["pull", "push"]);
        assert_eq!(Scope::parse("registry:catalog:*").unwrap().actions, ["*"]);
        assert!(Scope::parse("nonsense").is_none());
        assert_eq!(Action::parse_scope("*").len(), 5);
        assert!(Action::parse_scope("fly").is_empty());
    }
}
