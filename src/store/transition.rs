//! The one compare-and-set of a status through its lifecycle, shared by every table
//! that has a status column (`status`) and an `id` key.
//!
//! A [`Transition`] can only be made by [`Transition::decide`], which asks the
//! lifecycle: so the status [`Transition::write`] stores is always a value `apply`
//! returned, and the `WHERE status = <read>` makes the write lose, not overwrite,
//! when another writer changed the row since it was read.

use sqlx::any::AnyRow;

use super::sql::{Bind, bind_all};
use super::write_tx::WriteTx;
use super::{Result, StoreError};
use crate::domain::Lifecycle;

/// One more column an update sets, as SQL with `{}` where its value goes
/// (`"updated_at = {}"`, `"pid = COALESCE({}, pid)"`). Never the status itself.
pub(super) struct Set(pub &'static str, pub Bind);

/// A status change its lifecycle allowed, not yet written.
#[derive(Debug, Clone)]
pub(super) struct Transition<L: Lifecycle> {
    from: L,
    to: L,
}

impl<L: Lifecycle> Transition<L> {
    /// Asks the lifecycle. Decide before the write transaction begins when the
    /// state was read outside it: a refusal then changes nothing and takes no lock
    /// (and on SQLite a write transaction must start with a write).
    pub(super) fn decide(from: L, event: L::Event) -> Result<Self> {
        let to = from.clone().apply(event)?;
        Ok(Transition { from, to })
    }

    pub(super) fn to(&self) -> &L {
        &self.to
    }

    /// `UPDATE <table> SET status = <to>, <sets> WHERE id = <id> AND status = <from>
    /// RETURNING <columns>`; a row that is no longer in `from` is a
    /// [`StoreError::Conflict`] (a lost compare-and-set), and the caller's
    /// transaction should be dropped.
    pub(super) async fn write(
        &self,
        tx: &mut WriteTx,
        (table, columns): (&str, &str),
        id: i64,
        sets: Vec<Set>,
    ) -> Result<AnyRow> {
        let mut sql = format!("UPDATE {table} SET status = $1");
        let mut binds = vec![Bind::Text(self.to.status_name().to_string())];
        for Set(clause, value) in sets {
            debug_assert!(
                !clause.trim_start().starts_with("status"),
                "the status is the lifecycle's: {clause}"
            );
            binds.push(value);
            sql.push_str(", ");
            sql.push_str(&clause.replacen("{}", &format!("${}", binds.len()), 1));
        }
        sql.push_str(&format!(
            " WHERE id = ${} AND status = ${} RETURNING {columns}",
            binds.len() + 1,
            binds.len() + 2
        ));
        binds.push(Bind::Int(id));
        binds.push(Bind::Text(self.from.status_name().to_string()));
        bind_all(sqlx::query(&sql), binds)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "{} {id} changed status concurrently; reload and try again",
                    L::NAME
                ))
            })
    }
}
