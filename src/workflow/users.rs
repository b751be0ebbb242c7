//! Staff accounts: creation (idempotent), access changes, deactivation,
//! deletion and password resets. A change and what must go with it (ending
//! the user's sessions, the audit event with before and after) are written
//! in one transaction. The guards: nobody deactivates, demotes or deletes
//! themselves, and some active admin can always manage permissions.

use mongodb::bson::{doc, to_bson};
use secrecy::{ExposeSecret, SecretString};

use super::{
    access::{self, ensure_admins_remain, ensure_may_grant, ensure_may_manage, AdminChange},
    idempotency::{self, Claimed, Created, Idem},
    tx::Tx,
    Ctx,
};
use crate::{
    auth::password::{self, Hasher},
    domain::{
        permission::Rule,
        user::{Role, User},
        UserId,
    },
    error::{AppError, Result},
    repo::{
        audit::AuditEvent,
        avatars::Avatar,
        users::{NewUser, UserChanges},
    },
    transaction,
};

/// An account to create.
pub struct NewAccount {
    pub name: String,
    pub email: String,
    pub password: SecretString,
    pub role: Role,
    pub overrides: Vec<Rule>,
}

/// A change to an account; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    /// Replaces the user's overrides.
    pub permissions: Option<Vec<Rule>>,
}

/// 403 unless `actor` may change `target`'s account (see
/// [`ensure_may_manage`]).
async fn may_manage(ctx: &Ctx, actor: UserId, target: &User) -> Result<()> {
    let me = acting(ctx, actor).await?;
    ensure_may_manage(&access::matrix(ctx).await?, &me, target)
}

/// The account making a change (its role and overrides decide what it may
/// grant).
async fn acting(ctx: &Ctx, actor: UserId) -> Result<User> {
    ctx.repos
        .users
        .find(actor)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))
}

pub async fn load(ctx: &Ctx, id: UserId) -> Result<User> {
    ctx.repos
        .users
        .find(id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))
}

/// Creates an account (there is no self-registration).
pub async fn create(
    ctx: &Ctx,
    hasher: &Hasher,
    actor: UserId,
    input: NewAccount,
    idem: Idem<'_, User>,
) -> Result<Created<User>> {
    let email = input.email.trim().to_lowercase();
    password::check_policy(input.password.expose_secret(), &email, "password")?;
    let me = acting(ctx, actor).await?;
    let matrix = access::matrix(ctx).await?;
    ensure_may_grant(&matrix, &me, None, (input.role, &input.overrides))?;
    let claim = match idempotency::claim(ctx, actor, idem.request).await? {
        Claimed::Replay(r) => return Ok(Created::Replayed(r)),
        Claimed::Proceed(c) => c,
    };
    let result = async {
        let password_hash = hasher.hash(&input.password).await?;
        let new = NewUser {
            name: input.name.trim().to_owned(),
            email,
            password_hash,
            role: input.role,
            permission_overrides: input.overrides,
            created_by: Some(actor),
        };
        transaction!(ctx, |tx| {
            let user = ctx
                .repos
                .users
                .create_in(tx.session()?, new.clone())
                .await?;
            tx.point("user.create:insert")?;
            idempotency::complete(ctx, &mut tx, claim.as_ref(), &idem, &user).await?;
            Ok(user)
        })
    }
    .await;
    ctx.names.invalidate();
    idempotency::finish(ctx, claim, result).await
}

/// Applies `changes` and, with a new role, ends the user's sessions; the
/// audit event goes with an access change (role or overrides). Returns the
/// updated user and whether their sessions were ended.
pub async fn update(
    ctx: &Ctx,
    actor: UserId,
    id: UserId,
    changes: AccountChanges,
    mut audit: AuditEvent,
) -> Result<User> {
    let user = load(ctx, id).await?;
    let me = acting(ctx, actor).await?;
    let matrix = access::matrix(ctx).await?;
    ensure_may_manage(&matrix, &me, &user)?;
    let role_changes = changes.role.is_some_and(|r| r != user.role);
    if role_changes && id == actor {
        return Err(AppError::conflict("you cannot change your own role"));
    }
    let access_change = role_changes || changes.permissions.is_some();
    if access_change {
        ensure_may_grant(
            &matrix,
            &me,
            Some((user.role, &user.permission_overrides)),
            (
                changes.role.unwrap_or(user.role),
                changes
                    .permissions
                    .as_deref()
                    .unwrap_or(&user.permission_overrides),
            ),
        )?;
    }
    let role_after = changes.role.unwrap_or(user.role);
    let overrides_set = changes.permissions.clone();
    let update = UserChanges {
        name: changes.name.map(|n| n.trim().to_owned()),
        email: changes.email.map(|e| e.trim().to_lowercase()),
        role: changes.role,
        permission_overrides: changes.permissions.clone(),
        bump_token_version: role_changes,
        ..Default::default()
    };
    let overrides_after = changes
        .permissions
        .as_ref()
        .unwrap_or(&user.permission_overrides);
    audit.details = Some(doc! {
        "role_before": user.role.as_str(),
        "role_after": changes.role.unwrap_or(user.role).as_str(),
        "overrides_changed": changes.permissions.is_some(),
        "overrides_before": to_bson(&user.permission_overrides).map_err(AppError::internal)?,
        "overrides_after": to_bson(overrides_after).map_err(AppError::internal)?,
    });
    transaction!(ctx, |tx| {
        if access_change {
            let change = AdminChange::User {
                id,
                role: role_after,
                active: user.active,
                overrides: overrides_set.clone(),
            };
            ensure_admins_remain(ctx, &mut tx, change).await?;
        }
        let updated = apply(ctx, &mut tx, actor, id, update.clone()).await?;
        if role_changes {
            end_sessions(ctx, &mut tx, id).await?;
        }
        if access_change {
            ctx.repos.audit.record_in(tx.session()?, &audit).await?;
            tx.point("user.update:audit")?;
        }
        Ok(updated)
    })
    .inspect(|_| ctx.names.invalidate())
}

async fn apply(
    ctx: &Ctx,
    tx: &mut Tx,
    actor: UserId,
    id: UserId,
    changes: UserChanges,
) -> Result<User> {
    let updated = ctx
        .repos
        .users
        .update(tx.session()?, id, changes, Some(actor))
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    tx.point("user:update")?;
    Ok(updated)
}

/// Revokes every refresh token of the user; the bumped token version (in
/// the same transaction) voids their access tokens.
async fn end_sessions(ctx: &Ctx, tx: &mut Tx, id: UserId) -> Result<()> {
    ctx.repos
        .refresh_tokens
        .revoke_all_for_user(tx.session()?, id)
        .await?;
    tx.point("user:end_sessions")
}

/// A user changing their own display name or time zone.
pub async fn update_self(
    ctx: &Ctx,
    me: UserId,
    name: Option<&str>,
    time_zone: Option<Option<String>>,
) -> Result<User> {
    let changes = UserChanges {
        name: name.map(|n| n.trim().to_owned()),
        time_zone,
        ..Default::default()
    };
    transaction!(ctx, |tx| apply(ctx, &mut tx, me, me, changes.clone()).await)
        .inspect(|_| ctx.names.invalidate())
}

/// Deletes an account (not one's own, not the last admin), with its
/// sessions and audit event; then its profile image.
pub async fn delete(ctx: &Ctx, actor: UserId, id: UserId, audit: AuditEvent) -> Result<()> {
    if id == actor {
        return Err(AppError::conflict("you cannot delete your own account"));
    }
    let user = load(ctx, id).await?;
    may_manage(ctx, actor, &user).await?;
    transaction!(ctx, |tx| {
        ensure_admins_remain(ctx, &mut tx, AdminChange::Removed(id)).await?;
        end_sessions(ctx, &mut tx, id).await?;
        if !ctx.repos.users.delete(tx.session()?, id).await? {
            return Err(AppError::not_found("user"));
        }
        tx.point("user.delete:delete")?;
        ctx.repos.audit.record_in(tx.session()?, &audit).await?;
        tx.point("user.delete:audit")
    })?;
    if let Some(file) = user.avatar_file_id {
        // After the commit: an image left behind by a failure here is
        // unreachable and harmless; one deleted before a rollback would not be.
        ctx.repos.avatars.delete(file).await?;
    }
    Ok(())
}

/// Activates or deactivates an account; deactivation ends its sessions at
/// once and is refused for oneself and for the last admin.
pub async fn set_active(
    ctx: &Ctx,
    actor: UserId,
    id: UserId,
    active: bool,
    audit: AuditEvent,
) -> Result<User> {
    let user = load(ctx, id).await?;
    may_manage(ctx, actor, &user).await?;
    if !active && id == actor {
        return Err(AppError::conflict("you cannot deactivate your own account"));
    }
    let changes = UserChanges {
        active: Some(active),
        bump_token_version: !active && user.active,
        ..Default::default()
    };
    transaction!(ctx, |tx| {
        if !active {
            ensure_admins_remain(ctx, &mut tx, AdminChange::Removed(id)).await?;
        }
        let updated = apply(ctx, &mut tx, actor, id, changes.clone()).await?;
        if !active {
            end_sessions(ctx, &mut tx, id).await?;
        }
        ctx.repos.audit.record_in(tx.session()?, &audit).await?;
        tx.point("user.set_active:audit")?;
        Ok(updated)
    })
}

/// Stores a new password (already checked against the policy) and ends
/// every session of the user, with the audit event.
pub async fn set_password(
    ctx: &Ctx,
    hasher: &Hasher,
    actor: UserId,
    id: UserId,
    new_password: &SecretString,
    audit: AuditEvent,
) -> Result<User> {
    let hash = hasher.hash(new_password).await?;
    let changes = UserChanges {
        password_hash: Some(hash),
        bump_token_version: true,
        ..Default::default()
    };
    transaction!(ctx, |tx| {
        let updated = apply(ctx, &mut tx, actor, id, changes.clone()).await?;
        end_sessions(ctx, &mut tx, id).await?;
        ctx.repos.audit.record_in(tx.session()?, &audit).await?;
        tx.point("user.set_password:audit")?;
        Ok(updated)
    })
}

/// An admin sets another user's password (one's own needs the current one).
pub async fn reset_password(
    ctx: &Ctx,
    hasher: &Hasher,
    actor: UserId,
    id: UserId,
    new_password: &SecretString,
    audit: AuditEvent,
) -> Result<User> {
    if id == actor {
        // Changing one's own password proves the current one; a reset
        // would let a stolen session take the account over.
        return Err(AppError::conflict(
            "change your own password with POST /api/v1/auth/password",
        ));
    }
    let user = load(ctx, id).await?;
    may_manage(ctx, actor, &user).await?;
    password::check_policy(new_password.expose_secret(), &user.email, "new_password")?;
    set_password(ctx, hasher, actor, id, new_password, audit).await
}

/// The image type by its first bytes; the file name and declared type are
/// not trusted.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Stores a profile image (PNG or JPEG by content) and drops the previous one.
pub async fn store_avatar(ctx: &Ctx, id: UserId, by: UserId, bytes: &[u8]) -> Result<User> {
    let user = load(ctx, id).await?;
    may_manage(ctx, by, &user).await?;
    let Some(content_type) = sniff_image(bytes) else {
        return Err(AppError::UnsupportedMediaType(
            "the avatar must be a PNG or JPEG image".into(),
        ));
    };
    let file_id = ctx.repos.avatars.store(id, content_type, bytes).await?;
    match ctx.repos.users.set_avatar(id, file_id, by).await? {
        Some(previous) => {
            if let Some(old) = previous {
                ctx.repos.avatars.delete(old).await?;
            }
        }
        None => {
            // The user vanished meanwhile: do not leave an orphaned file.
            ctx.repos.avatars.delete(file_id).await?;
            return Err(AppError::not_found("user"));
        }
    }
    load(ctx, id).await
}

/// The user's profile image.
pub async fn avatar(ctx: &Ctx, id: UserId) -> Result<Avatar> {
    let user = load(ctx, id).await?;
    let file = user
        .avatar_file_id
        .ok_or_else(|| AppError::not_found("avatar"))?;
    ctx.repos
        .avatars
        .load(file)
        .await?
        .ok_or_else(|| AppError::not_found("avatar"))
}
