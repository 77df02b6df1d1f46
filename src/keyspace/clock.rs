//! The clock a cursor follows, if any: a pass's upper bound is capped at it so that one row
//! dated in the far future (9999-12-31, `infinity`, an epoch of year 9999, max bigint) cannot
//! carry the watermark there and freeze every later pass. Time types follow the source's
//! clock; a number follows it when its values are epoch times, in the unit `--cursor-clock`
//! names or, by default, the unit its values show (`detect_epoch`, from the column's
//! statistics): the smallest value is after 1990 and the largest not past the clock is
//! within the last 30 days, in that unit.
//! A counter (ids, versions) matches no unit and is not capped.

use crate::db::ident::{quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use postgres::types::Type;

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
                match integer_range(sql_type).map(|r| *r.end()) {
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

/// The values of an integer type (as `format_type` names it); `None` for other types.
pub fn integer_range(sql_type: &str) -> Option<std::ops::RangeInclusive<i64>> {
    match sql_type {
        "smallint" => Some(i64::from(i16::MIN)..=i64::from(i16::MAX)),
        "integer" => Some(i64::from(i32::MIN)..=i64::from(i32::MAX)),
        "bigint" => Some(i64::MIN..=i64::MAX),
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
/// show (`detect_epoch`); `None` for anything else, and without a choice (a diff job's
/// windows, on its key, follow no clock).
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

/// The epoch unit a numeric cursor's values show (`unit_of`), read from the column's
/// statistics (`pg_stats`: no row read) or, when it has none yet, by four probes of the
/// cursor's index.
fn detect_epoch(
    client: &mut postgres::Client,
    table: &QualifiedName,
    cursor: &(String, String),
) -> Result<Option<EpochUnit>, DbError> {
    let doing = "looking at the cursor's values for an epoch unit";
    let row = client
        .query_typed_one(
            "SELECT extract(epoch FROM pg_catalog.now())::float8, \
               (SELECT coalesce(s.histogram_bounds::text::float8[], '{}') || coalesce(s.most_common_vals::text::float8[], '{}') \
                  FROM pg_catalog.pg_stats s WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3 \
                 ORDER BY s.inherited DESC LIMIT 1)",
            &[
                (&table.schema, Type::TEXT),
                (&table.name, Type::TEXT),
                (&cursor.0, Type::TEXT),
            ],
        )
        .on(Side::Source, doing)?;
    let now: f64 = row.get(0);
    let mut values: Vec<f64> = row.get::<_, Option<Vec<f64>>>(1).unwrap_or_default();
    if values.is_empty() {
        // Never analysed: the smallest value, and for each unit the largest not more than
        // a day past the clock (the bound in the cursor's type, so that the index answers;
        // each output named apart from the column, or `ORDER BY` would sort the output).
        let (c, t) = (quote(&cursor.0), &cursor.1);
        let largest = |unit: EpochUnit| {
            let bound = CursorClock::Epoch(unit).at_sql(t, 1);
            format!(
                "(SELECT {c}::float8 AS value FROM {} WHERE {c} <= {bound} ORDER BY {c} DESC LIMIT 1)",
                table.sql()
            )
        };
        let sql = format!(
            "SELECT (SELECT {c}::float8 AS value FROM {} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1), {}, {}, {}",
            table.sql(),
            largest(EpochUnit::Seconds),
            largest(EpochUnit::Millis),
            largest(EpochUnit::Micros),
        );
        let row = client.query_typed_one(&sql, &[]).on(Side::Source, doing)?;
        values = (0..4)
            .filter_map(|i| row.get::<_, Option<f64>>(i))
            .collect();
    }
    Ok(unit_of(&values, now))
}

/// The first unit (seconds, milliseconds, microseconds) in which the smallest of `values`
/// is after 1990-01-01 and the largest not more than a day past `now` (epoch seconds) is
/// within its last 30 days; `None` for no values or a counter (pure).
fn unit_of(values: &[f64], now: f64) -> Option<EpochUnit> {
    const SINCE_1990: f64 = 631_152_000.0;
    const DAY: f64 = 86_400.0;
    let lowest = values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .reduce(f64::min)?;
    EpochUnit::ALL.into_iter().find(|unit| {
        let per = unit.per_second() as f64;
        let clock = now * per;
        let latest = values
            .iter()
            .copied()
            .filter(|v| *v <= clock + DAY * per)
            .reduce(f64::max);
        lowest >= SINCE_1990 * per && latest.is_some_and(|l| l >= clock - 30.0 * DAY * per)
    })
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

    #[test]
    fn the_epoch_unit_is_the_one_whose_values_are_recent_and_after_1990() {
        let now = 1_780_000_000.0;
        let ms = [
            1_533_945_600_000.0,
            now * 1000.0 - 5_000.0,
            253_402_300_799_999.0,
        ];
        assert_eq!(unit_of(&ms, now), Some(EpochUnit::Millis));
        let s = [now - 3_600.0, now - 60.0, 9.2e18];
        assert_eq!(unit_of(&s, now), Some(EpochUnit::Seconds));
        let us = [1.7e15, now * 1e6];
        assert_eq!(unit_of(&us, now), Some(EpochUnit::Micros));
        // A counter; old epochs (nothing in the last 30 days); a 0 sentinel; nothing.
        assert_eq!(unit_of(&[1.0, 500.0, 2_000_000.0], now), None);
        assert_eq!(
            unit_of(&[1_533_945_600_000.0, 1_633_945_600_000.0], now),
            None
        );
        assert_eq!(unit_of(&[0.0, now * 1000.0], now), None);
        assert_eq!(unit_of(&[], now), None);
    }
}
