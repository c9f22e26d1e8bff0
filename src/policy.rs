//! Policy: the thresholds behind every health decision (`config`), the α budget every test
//! that can roll back draws on and the looks' spending schedule (`budget`), the judging of
//! one signal's numbers into a `Verdict` (`judge`), and looks in words (`words`).

mod budget;
mod config;
mod judge;
mod verdict;
mod words;

pub use budget::{
    Allocation, Budget, BudgetRow, Guard, LookedEvents, Method, SchedulePoint, Spend, Stage,
    CLOSING_ALLOWANCE,
};
pub use config::{
    AlphaSplit, CountTest, Policy, PolicyError, QueueThresholds, CEILING_ALPHA,
    MAX_HISTORY_MINUTES, P95_TAIL_SHARE, SCALED_EVENTS_PER_MINUTE, SCALED_MAX_EVENTS_PER_MINUTE,
    VERY_SLOW_MAX_EVENTS_PER_MINUTE,
};
pub use judge::ConcurrentShare;
pub use verdict::{describe_needed, Breach, Gap, Reason, Signal, Verdict};
pub use words::{format_e_value, format_probability, rate};
