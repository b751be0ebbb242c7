//! The `generations` collection: one document whose fields count the
//! committed writes to each collection the reports read. A write bumps its
//! collection's count in the same transaction, so a count changes exactly
//! when what the reports see changes, on every instance that reads it.
//! The report cache (`workflow::reports::cache`) keys its entries by them.

use mongodb::{
    bson::{doc, Document},
    ClientSession, Collection, Database,
};

use crate::error::Result;

/// The collections whose writes the reports see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Patients,
    Treatments,
    /// The earnings ledger.
    Earnings,
    Hospitals,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Patients,
        Source::Treatments,
        Source::Earnings,
        Source::Hospitals,
    ];

    /// The field of the generations document that counts its writes.
    pub fn field(self) -> &'static str {
        match self {
            Source::Patients => "patients",
            Source::Treatments => "treatments",
            Source::Earnings => "earnings",
            Source::Hospitals => "hospitals",
        }
    }
}

/// The write counts as read at one moment, in [`Source::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Generations(pub [i64; 4]);

impl Generations {
    pub fn of(&self, s: Source) -> i64 {
        self.0[s as usize]
    }
}

/// The one document's `_id`.
const DOC_ID: &str = "reports";

#[derive(Clone)]
pub struct GenerationsRepo {
    coll: Collection<Document>,
}

impl GenerationsRepo {
    pub fn new(db: &Database) -> Self {
        GenerationsRepo {
            coll: db.collection("generations"),
        }
    }

    /// Counts one more write to `source`, inside the writer's transaction
    /// `s`: rolled back with it, committed with it.
    pub async fn bump(&self, s: &mut ClientSession, source: Source) -> Result<()> {
        self.coll
            .update_one(
                doc! { "_id": DOC_ID },
                doc! { "$inc": { source.field(): 1_i64 } },
            )
            .upsert(true)
            .session(s)
            .await?;
        Ok(())
    }

    /// The counts now; all zero before the first write.
    pub async fn read(&self) -> Result<Generations> {
        let found = self.coll.find_one(doc! { "_id": DOC_ID }).await?;
        let mut counts = [0_i64; 4];
        if let Some(d) = found {
            for (slot, source) in counts.iter_mut().zip(Source::ALL) {
                *slot = super::reports::int(&d, source.field());
            }
        }
        Ok(Generations(counts))
    }
}
