//! All MongoDB access: one repository per collection. Handlers never build
//! BSON filters; they call these.

pub mod appointments;
pub mod audit;
pub mod avatars;
pub mod guards;
pub mod history;
pub mod hospitals;
pub mod idempotency;
pub mod patients;
pub mod permissions;
pub mod refresh_tokens;
pub mod reports;
pub mod treatments;
pub mod users;

use mongodb::Database;

/// Adds `from <= field < before` to `filter`, as one `$and` clause per
/// bound. Written this way because the stand-in's aggregation `$match`
/// mis-compares dates under `{field: {$gte, $lt}}` (it treats every `$lt`
/// as false) but evaluates `$and` clauses correctly; real MongoDB reads both
/// forms the same and uses the index either way (README notes).
pub fn add_date_range(
    filter: &mut mongodb::bson::Document,
    field: &str,
    from: Option<mongodb::bson::DateTime>,
    before: Option<mongodb::bson::DateTime>,
) {
    use mongodb::bson::{doc, Bson};
    let mut clauses: Vec<Bson> = match filter.remove("$and") {
        Some(Bson::Array(a)) => a,
        _ => Vec::new(),
    };
    if let Some(from) = from {
        clauses.push(Bson::Document(doc! { field: { "$gte": from } }));
    }
    if let Some(before) = before {
        clauses.push(Bson::Document(doc! { field: { "$lt": before } }));
    }
    if !clauses.is_empty() {
        filter.insert("$and", clauses);
    }
}

/// Offset pagination as the list endpoints use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
}

impl PageRequest {
    pub fn skip(&self) -> u64 {
        (self.page.saturating_sub(1)).saturating_mul(self.per_page)
    }
}

/// One page of `filter`'s matches in `sort` order, and the total count.
pub async fn paged<T>(
    coll: &mongodb::Collection<T>,
    filter: mongodb::bson::Document,
    sort: mongodb::bson::Document,
    page: PageRequest,
) -> crate::error::Result<(Vec<T>, u64)>
where
    T: serde::de::DeserializeOwned + Send + Sync + Unpin,
{
    use futures::TryStreamExt;
    let total = crate::db::count(coll, filter.clone()).await?;
    let items = coll
        .find(filter)
        .sort(sort)
        .skip(page.skip())
        .limit(i64::try_from(page.per_page).unwrap_or(100))
        .await?
        .try_collect()
        .await?;
    Ok((items, total))
}

/// Escapes `text` for use inside a `$regex` so user input matches literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The repositories, built once per database.
#[derive(Clone)]
pub struct Repos {
    pub users: users::UsersRepo,
    pub refresh_tokens: refresh_tokens::RefreshTokensRepo,
    pub permissions: permissions::PermissionsRepo,
    pub audit: audit::AuditRepo,
    pub avatars: avatars::AvatarsRepo,
    pub hospitals: hospitals::HospitalsRepo,
    pub patients: patients::PatientsRepo,
    pub history: history::HistoryRepo,
    pub appointments: appointments::AppointmentsRepo,
    pub treatments: treatments::TreatmentsRepo,
    pub reports: reports::ReportsRepo,
    pub idempotency: idempotency::IdempotencyRepo,
    pub guards: guards::GuardsRepo,
}

impl Repos {
    pub fn new(db: &Database) -> Self {
        Repos {
            users: users::UsersRepo::new(db),
            refresh_tokens: refresh_tokens::RefreshTokensRepo::new(db),
            permissions: permissions::PermissionsRepo::new(db),
            audit: audit::AuditRepo::new(db),
            avatars: avatars::AvatarsRepo::new(db),
            hospitals: hospitals::HospitalsRepo::new(db),
            patients: patients::PatientsRepo::new(db),
            history: history::HistoryRepo::new(db),
            appointments: appointments::AppointmentsRepo::new(db),
            treatments: treatments::TreatmentsRepo::new(db),
            reports: reports::ReportsRepo::new(db),
            idempotency: idempotency::IdempotencyRepo::new(db),
            guards: guards::GuardsRepo::new(db),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(super::regex_escape("a.b*(c)"), r"a\.b\*\(c\)");
        assert_eq!(super::regex_escape("plain"), "plain");
    }
}
