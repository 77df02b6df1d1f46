//! The clock a cursor follows, if any: a pass's upper bound is capped at it so that one row
//! dated in the far future (9999-12-31, `infinity`, an epoch of year 9999, max bigint) cannot
//! carry the watermark there and freeze every later pass. Time types follow the source's
//! clock; a number follows it when its values are epoch times, in the unit `--cursor-clock`
//! names or, by default, the unit its values show (`detect_epoch`): the smallest value is
//! after 1990 and the largest not past the clock is within the last 30 days, in that unit.
//! A counter (ids, versions) matches no unit and is not capped.

use crate::db::ident::{quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};

/// `--cursor-clock`: how a numeric cursor relates to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CursorClockArg {
    /// Epoch seconds, milliseconds or microseconds when the values show it; else none.
    #[default]
    Auto,
    /// Not a clock: never capped.
    None,
    /// Seconds since 1970.
    EpochS,
    /// Milliseconds since 1970.
    EpochMs,
    /// Microseconds since 1970.
    EpochUs,
}

/// The unit of an epoch cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    Seconds,
    Millis,
    Micros,
}

impl EpochUnit {
    const ALL: [EpochUnit; 3] = [Self::Seconds, Self::Millis, Self::Micros];

    fn per_second(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Millis => 1_000,
            Self::Micros => 1_000_000,
        }
    }

    /// As `plan` and the notes name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seconds => "epoch seconds",
            Self::Millis => "epoch milliseconds",
            Self::Micros => "epoch microseconds",
        }
    }
}

/// The clock a cursor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorClock {
    /// A date/time type: the source's `now()` (or its local or date form).
    Time(&'static str),
    /// A number counting time since 1970.
    Epoch(EpochUnit),
}

impl CursorClock {
    /// The source's clock `days` days ahead, as an SQL expression of the cursor's type
    /// (`sql_type`, from the catalog), so that an index on the cursor answers a comparison
    /// with it; for an integer type too small for the value, the type's largest.
    pub fn at_sql(self, sql_type: &str, days: u32) -> String {
        match self {
            Self::Time(now) if days == 0 => now.to_string(),
            Self::Time(now) => format!("{now} + interval '{days} day'"),
            Self::Epoch(unit) => {
                let per = unit.per_second();
                let value = format!(
                    "extract(epoch FROM pg_catalog.now()) * {per} + {}",
                    u64::from(days) * 86_400 * per
                );
                match integer_max(sql_type) {
                    Some(max) => format!("least({value}, {max})::{sql_type}"),
                    None => format!("({value})::{sql_type}"),
                }
            }
        }
    }

    /// How `plan` names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Time(_) => "the source's clock",
            Self::Epoch(unit) => unit.name(),
        }
    }
}

/// The largest value of an integer type.
fn integer_max(sql_type: &str) -> Option<i64> {
    match sql_type {
        "smallint" => Some(i64::from(i16::MAX)),
        "integer" => Some(i64::from(i32::MAX)),
        "bigint" => Some(i64::MAX),
        _ => None,
    }
}

/// The clock of a date/time cursor type (as `format_type` prints it); `None` otherwise.
pub fn time_clock(sql_type: &str) -> Option<CursorClock> {
    let t = sql_type.to_ascii_lowercase();
    let now = if t.starts_with("timestamp") && t.ends_with("with time zone") {
        "pg_catalog.now()"
    } else if t.starts_with("timestamp") {
        "LOCALTIMESTAMP"
    } else if t == "date" {
        "CURRENT_DATE"
    } else {
        return None;
    };
    Some(CursorClock::Time(now))
}

/// A numeric SQL type (a cursor that may count epoch time).
pub fn is_numeric(sql_type: &str) -> bool {
    let t = sql_type.to_ascii_lowercase();
    ["smallint", "integer", "bigint", "real", "double precision"].contains(&t.as_str())
        || t.starts_with("numeric")
}

/// The clock of the source's cursor `(name, type)` as `choice` asks: a time type's clock
/// whatever the choice; for a number, the named unit, or with `Auto` the unit its values
/// show (one statement: six probes of the cursor's index); `None` for anything else, and
/// without a choice (a diff job's windows, on its key, follow no clock).
pub fn cursor_clock(
    client: &mut postgres::Client,
    table: &QualifiedName,
    cursor: &(String, String),
    choice: Option<CursorClockArg>,
) -> Result<Option<CursorClock>, DbError> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    if let Some(clock) = time_clock(&cursor.1) {
        return Ok(Some(clock));
    }
    if !is_numeric(&cursor.1) {
        return Ok(None);
    }
    let unit = match choice {
        CursorClockArg::None => None,
        CursorClockArg::EpochS => Some(EpochUnit::Seconds),
        CursorClockArg::EpochMs => Some(EpochUnit::Millis),
        CursorClockArg::EpochUs => Some(EpochUnit::Micros),
        CursorClockArg::Auto => detect_epoch(client, table, cursor)?,
    };
    Ok(unit.map(CursorClock::Epoch))
}

/// The epoch unit a numeric cursor's values show: the first unit (seconds, milliseconds,
/// microseconds) in which the smallest value is after 1990-01-01 and the largest value not
/// more than a day past the clock is within its last 30 days. `None` for an empty table
/// or a counter.
fn detect_epoch(
    client: &mut postgres::Client,
    table: &QualifiedName,
    cursor: &(String, String),
) -> Result<Option<EpochUnit>, DbError> {
    const SINCE_1990: u64 = 631_152_000;
    let (c, t) = (quote(&cursor.0), &cursor.1);
    // The largest value up to a day past the clock (the bound in the cursor's type, so that
    // the index answers), compared as a number with the clock 30 days ago. The output is
    // named apart from the column: `ORDER BY` would otherwise sort the numeric output, not
    // read the index.
    let probe = |unit: EpochUnit| {
        let clock = CursorClock::Epoch(unit);
        format!(
            "(SELECT {c}::numeric AS value FROM {tbl} WHERE {c} <= {bound} ORDER BY {c} DESC LIMIT 1) \
               >= extract(epoch FROM pg_catalog.now()) * {per} - {month}",
            tbl = table.sql(),
            bound = clock.at_sql(t, 1),
            per = unit.per_second(),
            month = 30 * 86_400 * unit.per_second(),
        )
    };
    let lowest = format!(
        "(SELECT {c}::numeric AS value FROM {} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1)",
        table.sql()
    );
    let sql = format!(
        "SELECT {lowest} >= {}, {lowest} >= {}, {lowest} >= {}, {}, {}, {}",
        SINCE_1990,
        SINCE_1990 * 1_000,
        SINCE_1990 * 1_000_000,
        probe(EpochUnit::Seconds),
        probe(EpochUnit::Millis),
        probe(EpochUnit::Micros),
    );
    let row = client.query_typed_one(&sql, &[]).on(
        Side::Source,
        "looking at the cursor's values for an epoch unit",
    )?;
    Ok(EpochUnit::ALL
        .into_iter()
        .enumerate()
        .find_map(|(i, unit)| {
            let after_1990 = row.get::<_, Option<bool>>(i).unwrap_or(false);
            let recent = row.get::<_, Option<bool>>(i + 3).unwrap_or(false);
            (after_1990 && recent).then_some(unit)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_like_cursors_follow_the_source_clock() {
        let now = |t: &str| time_clock(t).map(|c| c.at_sql(t, 0));
        assert_eq!(
            now("timestamp with time zone").as_deref(),
            Some("pg_catalog.now()")
        );
        assert_eq!(
            now("timestamp(3) with time zone").as_deref(),
            Some("pg_catalog.now()")
        );
        assert_eq!(
            now("timestamp without time zone").as_deref(),
            Some("LOCALTIMESTAMP")
        );
        assert_eq!(now("date").as_deref(), Some("CURRENT_DATE"));
        assert_eq!(now("bigint"), None);
        assert_eq!(now("numeric(20,0)"), None);
        assert_eq!(
            time_clock("date").unwrap().at_sql("date", 1),
            "CURRENT_DATE + interval '1 day'"
        );
    }

    #[test]
    fn an_epoch_clock_is_the_source_now_in_its_unit_and_type_never_overflowing() {
        let ms = CursorClock::Epoch(EpochUnit::Millis);
        assert_eq!(
            ms.at_sql("numeric(15,0)", 0),
            "(extract(epoch FROM pg_catalog.now()) * 1000 + 0)::numeric(15,0)"
        );
        assert_eq!(
            ms.at_sql("integer", 1),
            "least(extract(epoch FROM pg_catalog.now()) * 1000 + 86400000, 2147483647)::integer"
        );
        assert!(is_numeric("numeric(20,0)") && is_numeric("bigint") && !is_numeric("text"));
    }
}
