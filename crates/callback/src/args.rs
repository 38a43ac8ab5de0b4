//! Parsing of the arguments Patroni appends to a callback command: `<action> <role> <scope>`.

use std::fmt;

/// The lifecycle event Patroni reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OnStart,
    OnStop,
    OnRestart,
    OnReload,
    OnRoleChange,
}

/// The role the node has after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
    StandbyLeader,
    Demoted,
}

/// One callback invocation, as Patroni describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub action: Action,
    pub role: Role,
    pub scope: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(
        "expected 3 arguments <action> <role> <scope> (as Patroni passes them), got {0}; configure it as a Patroni callback, e.g. on_role_change: 'patroni-lab callback'"
    )]
    WrongCount(usize),
    #[error(
        "unknown action '{0}': expected one of on_start, on_stop, on_restart, on_reload, on_role_change"
    )]
    UnknownAction(String),
    #[error("unknown role '{0}': expected one of primary, replica, standby_leader, demoted")]
    UnknownRole(String),
    #[error("empty cluster scope: Patroni passes the cluster name as the third argument")]
    EmptyScope,
}

impl Action {
    pub fn parse(text: &str) -> Result<Self, ArgsError> {
        match text {
            "on_start" => Ok(Self::OnStart),
            "on_stop" => Ok(Self::OnStop),
            "on_restart" => Ok(Self::OnRestart),
            "on_reload" => Ok(Self::OnReload),
            "on_role_change" => Ok(Self::OnRoleChange),
            other => Err(ArgsError::UnknownAction(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnStart => "on_start",
            Self::OnStop => "on_stop",
            Self::OnRestart => "on_restart",
            Self::OnReload => "on_reload",
            Self::OnRoleChange => "on_role_change",
        }
    }
}

impl Role {
    /// Patroni before 4.0 said `master`; it is accepted as `primary`.
    pub fn parse(text: &str) -> Result<Self, ArgsError> {
        match text {
            "primary" | "master" => Ok(Self::Primary),
            "replica" => Ok(Self::Replica),
            "standby_leader" => Ok(Self::StandbyLeader),
            "demoted" => Ok(Self::Demoted),
            other => Err(ArgsError::UnknownRole(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
            Self::StandbyLeader => "standby_leader",
            Self::Demoted => "demoted",
        }
    }
}

impl Invocation {
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, ArgsError> {
        let [action, role, scope] = args else {
            return Err(ArgsError::WrongCount(args.len()));
        };
        let scope = scope.as_ref();
        if scope.is_empty() {
            return Err(ArgsError::EmptyScope);
        }
        Ok(Self {
            action: Action::parse(action.as_ref())?,
            role: Role::parse(role.as_ref())?,
            scope: scope.to_string(),
        })
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.action.as_str(),
            self.role.as_str(),
            self.scope
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_action_and_role() {
        for action in [
            "on_start",
            "on_stop",
            "on_restart",
            "on_reload",
            "on_role_change",
        ] {
            for role in ["primary", "replica", "standby_leader", "demoted"] {
                let inv = Invocation::parse(&[action, role, "postgres-cluster"]).unwrap();
                assert_eq!(inv.action.as_str(), action);
                assert_eq!(inv.role.as_str(), role);
                assert_eq!(inv.scope, "postgres-cluster");
            }
        }
    }

    #[test]
    fn legacy_master_is_primary() {
        let inv = Invocation::parse(&["on_role_change", "master", "c"]).unwrap();
        assert_eq!(inv.role, Role::Primary);
    }

    #[test]
    fn unknown_role_is_a_clear_error() {
        let err = Invocation::parse(&["on_role_change", "leader", "c"]).unwrap_err();
        assert_eq!(err, ArgsError::UnknownRole("leader".into()));
        assert!(err.to_string().contains("expected one of primary"));
    }

    #[test]
    fn unknown_action_is_a_clear_error() {
        let err = Invocation::parse(&["on_promote", "primary", "c"]).unwrap_err();
        assert_eq!(err, ArgsError::UnknownAction("on_promote".into()));
    }

    #[test]
    fn wrong_argument_count_is_an_error() {
        assert_eq!(
            Invocation::parse(&["on_start", "primary"]).unwrap_err(),
            ArgsError::WrongCount(2)
        );
        assert_eq!(
            Invocation::parse::<&str>(&[]).unwrap_err(),
            ArgsError::WrongCount(0)
        );
        assert_eq!(
            Invocation::parse(&["on_start", "primary", "c", "extra"]).unwrap_err(),
            ArgsError::WrongCount(4)
        );
    }

    #[test]
    fn empty_scope_is_an_error() {
        assert_eq!(
            Invocation::parse(&["on_start", "primary", ""]).unwrap_err(),
            ArgsError::EmptyScope
        );
    }
}
