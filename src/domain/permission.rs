//! Route permissions: rules per role and per user, and how they combine.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::role::Role;

/// HTTP methods a rule can name.
pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A protected route: method plus the path template as the router declares it
/// (e.g. `/api/v1/patients/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct RouteKey {
    pub method: String,
    pub path: String,
}

impl RouteKey {
    pub fn new(method: &str, path: &str) -> Self {
        RouteKey {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
        }
    }
}

impl std::fmt::Display for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// One rule: allow or deny `method path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`, in any case.
    #[schema(min_length = 3, max_length = 6, example = "GET")]
    pub method: String,
    /// A protected route as `GET /api/v1/permissions/routes` lists it (the
    /// longest, `DELETED_DOCUMENTS`, has 44 characters).
    #[schema(
        pattern = "^/api/v1/",
        max_length = 44,
        example = "/api/v1/patients/{id}"
    )]
    pub path: String,
    pub allow: bool,
}

impl Rule {
    pub fn key(&self) -> RouteKey {
        RouteKey::new(&self.method, &self.path)
    }
}

/// The routes that must stay allowed for someone, or nobody could repair
/// the matrix through the API again.
pub fn management_routes() -> [RouteKey; 2] {
    [
        RouteKey::new("GET", "/api/v1/permissions"),
        RouteKey::new("PUT", "/api/v1/permissions/{role}"),
    ]
}

/// Permissions that are not routes of their own but a query that widens
/// one: listing soft-deleted patients (the restore screen) is
/// `GET /api/v1/patients?deleted=true`, granted apart from the list.
/// Seeing passport numbers in full is `GET
/// /api/v1/patients/{id}/travel?passport=shown`; without it the travel
/// record shows their last four characters.
/// Listing a patient's deleted documents (to restore one) is `GET
/// /api/v1/patients/{id}/documents?deleted=true`.
pub fn query_permissions() -> [RouteKey; 3] {
    [
        RouteKey::new("GET", DELETED_PATIENTS),
        RouteKey::new("GET", PASSPORT_NUMBERS),
        RouteKey::new("GET", DELETED_DOCUMENTS),
    ]
}

/// The path of the restore screen's permission.
pub const DELETED_PATIENTS: &str = "/api/v1/patients?deleted=true";

/// The path of the permission to list a patient's deleted documents.
pub const DELETED_DOCUMENTS: &str = "/api/v1/patients/{id}/documents?deleted=true";

/// The path of the permission to see passport numbers in full.
pub const PASSPORT_NUMBERS: &str = "/api/v1/patients/{id}/travel?passport=shown";

/// The whole matrix in memory: role -> route -> allow.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub roles: HashMap<Role, HashMap<RouteKey, bool>>,
}

impl Matrix {
    pub fn from_roles(roles: impl IntoIterator<Item = (Role, Vec<Rule>)>) -> Self {
        let roles = roles
            .into_iter()
            .map(|(role, rules)| {
                (
                    role,
                    rules.into_iter().map(|r| (r.key(), r.allow)).collect(),
                )
            })
            .collect();
        Matrix { roles }
    }

    /// The decision for a user: their own override wins, then the role's
    /// rule; no rule at all means deny.
    pub fn allows(&self, role: Role, overrides: &[Rule], route: &RouteKey) -> bool {
        if let Some(rule) = overrides.iter().find(|r| r.key() == *route) {
            return rule.allow;
        }
        self.roles
            .get(&role)
            .and_then(|rules| rules.get(route))
            .copied()
            .unwrap_or(false)
    }

    /// Every route a user with `role` and `overrides` may call, as far as
    /// rules name routes.
    pub fn granted(&self, role: Role, overrides: &[Rule]) -> BTreeSet<RouteKey> {
        let named = self
            .roles
            .get(&role)
            .into_iter()
            .flat_map(|rules| rules.keys().cloned())
            .chain(overrides.iter().map(Rule::key));
        named
            .filter(|route| self.allows(role, overrides, route))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: &str, path: &str, allow: bool) -> Rule {
        Rule {
            method: method.into(),
            path: path.into(),
            allow,
        }
    }

    #[test]
    fn overrides_win_and_default_is_deny() {
        let m = Matrix::from_roles([(
            Role::Staff,
            vec![rule("GET", "/a", true), rule("GET", "/b", false)],
        )]);
        let a = RouteKey::new("GET", "/a");
        let b = RouteKey::new("GET", "/b");
        let c = RouteKey::new("GET", "/c");
        assert!(m.allows(Role::Staff, &[], &a));
        assert!(!m.allows(Role::Staff, &[], &b));
        assert!(!m.allows(Role::Staff, &[], &c), "no rule: deny");
        assert!(!m.allows(Role::Admin, &[], &a), "other role has no rule");
        assert!(
            !m.allows(Role::Staff, &[rule("GET", "/a", false)], &a),
            "override deny"
        );
        assert!(
            m.allows(Role::Staff, &[rule("get", "/b", true)], &b),
            "override grant"
        );
    }
}
