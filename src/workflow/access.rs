//! Who may manage the service: the last-admin guard and changes to the
//! permission matrix, each saved with its audit event in one transaction.

use mongodb::bson::{doc, to_bson};

use super::Ctx;
use crate::{
    domain::{
        permission::{management_routes, Matrix, RouteKey, Rule},
        user::{Role, User},
        UserId,
    },
    error::{AppError, Result},
    repo::{audit::AuditEvent, permissions::StoredRule},
    transaction,
};

/// The matrix as stored now.
pub async fn matrix(ctx: &Ctx) -> Result<Matrix> {
    let roles = ctx.repos.permissions.all().await?;
    Ok(Matrix::from_roles(roles.into_iter().map(|r| {
        (r.role, r.rules.iter().map(StoredRule::rule).collect())
    })))
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
pub async fn ensure_admins_remain(ctx: &Ctx, change: AdminChange) -> Result<()> {
    let mut admins: Vec<User> = ctx.repos.users.active_admins().await?;
    let mut matrix = matrix(ctx).await?;
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
                None => ctx.repos.users.find(id).await?,
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
    transaction!(ctx, |tx| {
        let before = ctx
            .repos
            .permissions
            .for_role_in(tx.session()?, role)
            .await?
            .map(|r| r.rules)
            .unwrap_or_default();
        let (after, changes) = merge(before, rules, actor, ctx.clock.now_bson());
        let mut next = matrix(ctx).await?;
        next.roles.insert(
            role,
            after.iter().map(|r| (r.rule().key(), r.allow)).collect(),
        );
        ensure_admins_remain(ctx, AdminChange::Matrix(next)).await?;
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
