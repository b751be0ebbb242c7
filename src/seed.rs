//! Seeding: the default permission matrix from `seeds/permissions.json` and
//! the first admin from `SEED_ADMIN_EMAIL` / `SEED_ADMIN_PASSWORD`.
//!
//! Idempotent: rules missing from the database are added; rules still as the
//! seed set them follow the file; rules an admin changed through the API are
//! kept (and reported) unless `reset` is asked for. The whole file is
//! validated before anything is written, and a dry run writes nothing.

use std::collections::{BTreeMap, HashSet};

use mongodb::{bson::DateTime, Database};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    auth::password::{self, Hasher},
    domain::{
        permission::{RouteKey, Rule, METHODS},
        user::Role,
    },
    error::AppError,
    repo::{
        permissions::StoredRule,
        users::{NewUser, UserChanges},
        Repos,
    },
};

pub const DEFAULT_SEED_FILE: &str = "seeds/permissions.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    roles: BTreeMap<String, Vec<SeedRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRule {
    method: String,
    path: String,
    allow: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{file}: {entry}: {message}")]
    Invalid {
        file: String,
        entry: String,
        message: String,
    },
    #[error("{0}")]
    App(#[from] AppError),
}

/// Parses and validates a seed file against the server's protected routes.
pub fn parse(
    file: &str,
    text: &str,
    routes: &[RouteKey],
) -> Result<BTreeMap<Role, Vec<Rule>>, SeedError> {
    let invalid = |entry: String, message: String| SeedError::Invalid {
        file: file.into(),
        entry,
        message,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: SeedFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        invalid(
            if path == "." {
                "(top level)".into()
            } else {
                path
            },
            e.into_inner().to_string(),
        )
    })?;
    let known: HashSet<&RouteKey> = routes.iter().collect();
    let mut out = BTreeMap::new();
    for (role_name, rules) in parsed.roles {
        let role = Role::parse(&role_name).ok_or_else(|| {
            invalid(
                format!("roles.{role_name}"),
                "unknown role (admin or staff)".into(),
            )
        })?;
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for (i, r) in rules.into_iter().enumerate() {
            let entry = format!("roles.{role_name}[{i}]");
            let key = RouteKey::new(&r.method, &r.path);
            if !METHODS.contains(&key.method.as_str()) {
                return Err(invalid(entry, format!("unknown method '{}'", r.method)));
            }
            if !known.contains(&key) {
                return Err(invalid(entry, format!("no protected route {key}")));
            }
            if !seen.insert(key.clone()) {
                return Err(invalid(entry, format!("{key} is listed twice")));
            }
            list.push(Rule {
                method: key.method,
                path: key.path,
                allow: r.allow,
            });
        }
        out.insert(role, list);
    }
    Ok(out)
}

/// One line of what the seed does (or would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    AddRule {
        role: Role,
        rule: Rule,
    },
    UpdateRule {
        role: Role,
        rule: Rule,
    },
    ResetRule {
        role: Role,
        rule: Rule,
    },
    KeptAdminChange {
        role: Role,
        seed: Rule,
    },
    CreateAdmin {
        email: String,
    },
    /// The account exists but is not an active admin: it becomes one.
    RestoreAdmin {
        email: String,
    },
    NoAdmin,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allow = |r: &Rule| if r.allow { "allow" } else { "deny" };
        match self {
            Change::AddRule { role, rule } => write!(f, "+ {role}: {} {} {}", rule.method, rule.path, allow(rule)),
            Change::UpdateRule { role, rule } => {
                write!(f, "~ {role}: {} {} -> {} (seed file changed)", rule.method, rule.path, allow(rule))
            }
            Change::ResetRule { role, rule } => {
                write!(f, "! {role}: {} {} -> {} (admin change reset)", rule.method, rule.path, allow(rule))
            }
            Change::KeptAdminChange { role, seed } => write!(
                f,
                "= {role}: {} {} kept as an admin set it (seed says {}; --reset restores)",
                seed.method, seed.path, allow(seed)
            ),
            Change::CreateAdmin { email } => write!(f, "+ admin account {email}"),
            Change::RestoreAdmin { email } => write!(
                f,
                "~ admin account {email}: active admin again, password from SEED_ADMIN_PASSWORD"
            ),
            Change::NoAdmin => write!(
                f,
                "! no active admin account exists: set SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD and run again"
            ),
        }
    }
}

impl Change {
    /// Whether the line is a write (as opposed to a note).
    pub fn writes(&self) -> bool {
        !matches!(self, Change::KeptAdminChange { .. } | Change::NoAdmin)
    }
}

pub struct Options {
    pub dry_run: bool,
    pub reset: bool,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub admin_name: String,
}

/// Applies the seed; returns what changed (or would, on a dry run).
pub async fn run(
    db: &Database,
    seed: &BTreeMap<Role, Vec<Rule>>,
    opts: &Options,
) -> Result<Vec<Change>, SeedError> {
    let repos = Repos::new(db);
    let mut changes = Vec::new();
    let now = DateTime::now();
    let mut writes: Vec<(Role, Vec<StoredRule>)> = Vec::new();
    for (role, rules) in seed {
        let current = repos
            .permissions
            .for_role(*role)
            .await?
            .map(|r| r.rules)
            .unwrap_or_default();
        let mut next = current.clone();
        for rule in rules {
            let key = rule.key();
            let seeded = StoredRule {
                method: key.method.clone(),
                path: key.path.clone(),
                allow: rule.allow,
                updated_at: Some(now),
                updated_by: None,
                from_seed: true,
            };
            match next
                .iter()
                .position(|r| RouteKey::new(&r.method, &r.path) == key)
            {
                None => {
                    changes.push(Change::AddRule {
                        role: *role,
                        rule: rule.clone(),
                    });
                    next.push(seeded);
                }
                Some(i) if next[i].allow == rule.allow => {}
                Some(i) if next[i].from_seed => {
                    changes.push(Change::UpdateRule {
                        role: *role,
                        rule: rule.clone(),
                    });
                    next[i] = seeded;
                }
                Some(i) if opts.reset => {
                    changes.push(Change::ResetRule {
                        role: *role,
                        rule: rule.clone(),
                    });
                    next[i] = seeded;
                }
                Some(_) => changes.push(Change::KeptAdminChange {
                    role: *role,
                    seed: rule.clone(),
                }),
            }
        }
        if next != current {
            writes.push((*role, next));
        }
    }

    let new_admin = plan_admin(&repos, opts, &mut changes).await?;

    if opts.dry_run {
        return Ok(changes);
    }
    // Every role's rules or none: a matrix half-applied could lock the
    // admins out.
    let mut session = db.client().start_session().await.map_err(AppError::from)?;
    session.start_transaction().await.map_err(AppError::from)?;
    for (role, rules) in writes {
        if let Err(e) = repos.permissions.replace(&mut session, role, rules).await {
            let _ = session.abort_transaction().await;
            return Err(e.into());
        }
    }
    session.commit_transaction().await.map_err(AppError::from)?;
    if let Some(admin) = new_admin {
        write_admin(db, &repos, opts, admin).await?;
    }
    Ok(changes)
}

/// The admin account the seed must create or restore, when no admin is
/// active: `(email, password, the existing account with that email)`.
type NewAdmin = (String, SecretString, Option<crate::domain::UserId>);

/// Plans the admin account (and notes it in `changes`).
async fn plan_admin(
    repos: &Repos,
    opts: &Options,
    changes: &mut Vec<Change>,
) -> Result<Option<NewAdmin>, SeedError> {
    if repos.users.active_admin_exists().await? {
        return Ok(None);
    }
    let (Some(email), Some(pw)) = (&opts.admin_email, &opts.admin_password) else {
        changes.push(Change::NoAdmin);
        return Ok(None);
    };
    let email = email.trim().to_lowercase();
    if !validator::ValidateEmail::validate_email(&email) {
        return Err(SeedError::Invalid {
            file: "environment".into(),
            entry: "SEED_ADMIN_EMAIL".into(),
            message: "is not a valid email".into(),
        });
    }
    password::check_policy(pw.expose_secret(), &email, "SEED_ADMIN_PASSWORD").map_err(|e| {
        SeedError::Invalid {
            file: "environment".into(),
            entry: "SEED_ADMIN_PASSWORD".into(),
            message: e.to_string(),
        }
    })?;
    let existing = repos.users.credentials_by_email(&email).await?;
    changes.push(match existing {
        Some(_) => Change::RestoreAdmin {
            email: email.clone(),
        },
        None => Change::CreateAdmin {
            email: email.clone(),
        },
    });
    Ok(Some((email, pw.clone(), existing.map(|(u, _)| u.id))))
}

/// Creates the planned admin, or makes the existing account an active admin.
async fn write_admin(
    db: &Database,
    repos: &Repos,
    opts: &Options,
    (email, pw, existing): NewAdmin,
) -> Result<(), SeedError> {
    let hasher = Hasher::new(1, std::time::Duration::from_secs(30));
    let password_hash = hasher.hash(&pw).await?;
    match existing {
        // An inactive or demoted admin (or any account with that email)
        // is made an active admin with the seed's password; its old
        // sessions end.
        Some(id) => {
            let changes = UserChanges {
                role: Some(Role::Admin),
                active: Some(true),
                permission_overrides: Some(Vec::new()),
                password_hash: Some(password_hash),
                bump_token_version: true,
                ..Default::default()
            };
            // Both or neither: a restored admin with live old sessions, or
            // sessions ended without the restore, would each be wrong.
            let mut session = db.client().start_session().await.map_err(AppError::from)?;
            session.start_transaction().await.map_err(AppError::from)?;
            let restored = async {
                repos.users.update(&mut session, id, changes, None).await?;
                repos
                    .refresh_tokens
                    .revoke_all_for_user(&mut session, id)
                    .await
            }
            .await;
            if let Err(e) = restored {
                let _ = session.abort_transaction().await;
                return Err(e.into());
            }
            session.commit_transaction().await.map_err(AppError::from)?;
        }
        None => {
            repos
                .users
                .create(NewUser {
                    name: opts.admin_name.clone(),
                    email,
                    password_hash,
                    role: Role::Admin,
                    permission_overrides: Vec::new(),
                    created_by: None,
                })
                .await?;
        }
    }
    Ok(())
}
