//! Who may manage the service: the last-admin guard and changes to the
//! permission matrix, each saved with its audit event in one transaction.

use mongodb::bson::{doc, to_bson};

use super::{tx::Tx, Ctx};
use crate::{
    domain::{
        permission::{management_routes, Matrix, RouteKey, Rule},
        user::{Role, User},
        UserId,
    },
    error::{AppError, Result},
    repo::{audit::AuditEvent, guards, permissions::StoredRule},
    transaction,
};

/// The matrix as stored now.
pub async fn matrix(ctx: &Ctx) -> Result<Matrix> {
    let roles = ctx.repos.permissions.all().await?;
    Ok(to_matrix(roles))
}

/// The matrix as the transaction `tx` sees it.
async fn matrix_in(ctx: &Ctx, tx: &mut Tx) -> Result<Matrix> {
    Ok(to_matrix(
        ctx.repos.permissions.all_in(tx.session()?).await?,
    ))
}

fn to_matrix(roles: Vec<crate::repo::permissions::RoleRules>) -> Matrix {
    Matrix::from_roles(
        roles
            .into_iter()
            .map(|r| (r.role, r.rules.iter().map(StoredRule::rule).collect())),
    )
}

/// A change about to be made that could leave no admin in charge.
pub enum AdminChange {
    /// The user is deleted or deactivated.
    Removed(UserId),
    /// The user's role/overrides become these.
    User {
        id: UserId,
        role: Role,
        active: bool,
        overrides: Option<Vec<Rule>>,
    },
    /// The matrix becomes this.
    Matrix(Matrix),
}

/// 409 when, after `change`, no active admin would remain, or none could
/// still read and change the permission matrix.
///
/// Runs inside the transaction that makes the change, and first writes the
/// admins' guard (`repo::guards`): two such changes at once (two admins
/// deactivating each other) cannot both pass the check, as each reads what
/// the other committed.
pub async fn ensure_admins_remain(ctx: &Ctx, tx: &mut Tx, change: AdminChange) -> Result<()> {
    ctx.repos
        .guards
        .touch(tx.session()?, guards::ADMINS)
        .await?;
    tx.point("admins:guard")?;
    let mut admins: Vec<User> = ctx.repos.users.active_admins_in(tx.session()?).await?;
    let mut matrix = matrix_in(ctx, tx).await?;
    match change {
        AdminChange::Removed(id) => admins.retain(|u| u.id != id),
        AdminChange::User {
            id,
            role,
            active,
            overrides,
        } => {
            let current = match admins.iter().find(|u| u.id == id) {
                Some(u) => Some(u.clone()),
                None => ctx.repos.users.find_in(tx.session()?, id).await?,
            };
            admins.retain(|u| u.id != id);
            if let Some(mut user) = current {
                user.role = role;
                user.active = active;
                if let Some(o) = overrides {
                    user.permission_overrides = o;
                }
                if role == Role::Admin && active {
                    admins.push(user);
                }
            }
        }
        AdminChange::Matrix(m) => matrix = m,
    }
    if admins.is_empty() {
        return Err(AppError::conflict(
            "the last active admin cannot be removed, deactivated or demoted",
        ));
    }
    let can_manage = |u: &User| {
        management_routes()
            .iter()
            .all(|r| matrix.allows(u.role, &u.permission_overrides, r))
    };
    if !admins.iter().any(can_manage) {
        return Err(AppError::conflict(
            "refused: no active admin could manage permissions any more",
        ));
    }
    Ok(())
}

/// 403 unless `actor` may touch `target`'s account at all: only an admin
/// changes, deactivates, deletes or resets the password of an admin, and
/// nobody takes over (by a password reset, an email change) an account
/// that may call a route they may not.
pub fn ensure_may_manage(matrix: &Matrix, actor: &User, target: &User) -> Result<()> {
    if actor.id == target.id {
        return Ok(());
    }
    if target.role == Role::Admin && actor.role != Role::Admin {
        return Err(AppError::Forbidden(
            "only an admin may change an admin's account".into(),
        ));
    }
    let beyond: Vec<String> = matrix
        .granted(target.role, &target.permission_overrides)
        .into_iter()
        .filter(|route| !matrix.allows(actor.role, &actor.permission_overrides, route))
        .map(|route| route.to_string())
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "this account may call what you may not ({}); ask an admin",
        beyond.join(", ")
    )))
}

/// 403 when giving a user `after` (role, overrides) instead of `before`
/// would hand them a route `actor` may not call, or make them an admin
/// while `actor` is not one. Delegated user management can share what the
/// delegate holds, never more.
pub fn ensure_may_grant(
    matrix: &Matrix,
    actor: &User,
    before: Option<(Role, &[Rule])>,
    after: (Role, &[Rule]),
) -> Result<()> {
    let was_admin = before.is_some_and(|(role, _)| role == Role::Admin);
    if after.0 == Role::Admin && !was_admin && actor.role != Role::Admin {
        return Err(AppError::Forbidden(
            "only an admin may create or promote an admin".into(),
        ));
    }
    let had = before
        .map(|(role, overrides)| matrix.granted(role, overrides))
        .unwrap_or_default();
    let beyond: Vec<String> = matrix
        .granted(after.0, after.1)
        .difference(&had)
        .filter(|route| !matrix.allows(actor.role, &actor.permission_overrides, route))
        .map(ToString::to_string)
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "you may not grant what you do not hold: {}",
        beyond.join(", ")
    )))
}

/// Sets some of `role`'s rules (adding or replacing per method and path),
/// refused when no admin could manage permissions afterwards. The rules are
/// read, merged and written, with the audit event (`audit`, given its
/// details here), in one transaction: on MongoDB a concurrent change to the
/// same role conflicts and the merge is redone on fresh rules. Returns the
/// role's rules as stored.
pub async fn set_role_rules(
    ctx: &Ctx,
    actor: UserId,
    role: Role,
    rules: &[Rule],
    audit: AuditEvent,
) -> Result<Vec<StoredRule>> {
    let me = ctx
        .repos
        .users
        .find(actor)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    if role == Role::Admin && me.role != Role::Admin {
        return Err(AppError::Forbidden(
            "only an admin may change the admin role's rules".into(),
        ));
    }
    transaction!(ctx, |tx| {
        let before = ctx
            .repos
            .permissions
            .for_role_in(tx.session()?, role)
            .await?
            .map(|r| r.rules)
            .unwrap_or_default();
        let current = matrix_in(ctx, &mut tx).await?;
        let (after, changes) = merge(before, rules, actor, ctx.clock.now_bson());
        let mut next = current.clone();
        next.roles.insert(
            role,
            after.iter().map(|r| (r.rule().key(), r.allow)).collect(),
        );
        let granted: Vec<String> = rules
            .iter()
            .filter(|r| r.allow)
            .map(Rule::key)
            .filter(|k| {
                !current
                    .roles
                    .get(&role)
                    .and_then(|m| m.get(k))
                    .copied()
                    .unwrap_or(false)
            })
            .filter(|k| !current.allows(me.role, &me.permission_overrides, k))
            .map(|k| k.to_string())
            .collect();
        if !granted.is_empty() {
            return Err(AppError::Forbidden(format!(
                "you may not grant what you do not hold: {}",
                granted.join(", ")
            )));
        }
        ensure_admins_remain(ctx, &mut tx, AdminChange::Matrix(next)).await?;
        let mut audit = audit.clone();
        audit.details = Some(doc! {
            "role": role.as_str(),
            "changes": to_bson(&changes).map_err(AppError::internal)?,
        });
        ctx.repos
            .permissions
            .replace(tx.session()?, role, after.clone())
            .await?;
        tx.point("permissions.set:replace")?;
        ctx.repos.audit.record_in(tx.session()?, &audit).await?;
        tx.point("permissions.set:audit")?;
        Ok(after)
    })
}

/// `before` with `rules` set (added, or replacing the rule for the same
/// method and path), and the changes as `{method, path, before, after}`.
fn merge(
    before: Vec<StoredRule>,
    rules: &[Rule],
    actor: UserId,
    now: mongodb::bson::DateTime,
) -> (Vec<StoredRule>, Vec<mongodb::bson::Document>) {
    let mut after = before;
    let mut changes = Vec::new();
    for rule in rules {
        let key = rule.key();
        let previous = after
            .iter()
            .position(|r| RouteKey::new(&r.method, &r.path) == key);
        let was = previous.map(|i| after[i].allow);
        if was != Some(rule.allow) {
            changes.push(doc! { "method": &key.method, "path": &key.path, "before": was, "after": rule.allow });
        }
        let stored = StoredRule {
            method: key.method,
            path: key.path,
            allow: rule.allow,
            updated_at: Some(now),
            updated_by: Some(actor),
            from_seed: false,
        };
        match previous {
            Some(i) => after[i] = stored,
            None => after.push(stored),
        }
    }
    (after, changes)
}
