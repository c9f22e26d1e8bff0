//! The Analytics Engine point layout target Workers write, shared verbatim with the
//! `rollout-gate-instrument` crate (`instrument/src/layout.rs`) and held here to the
//! gate's default columns, so a writer and this reader cannot drift apart.

#[path = "../instrument/src/layout.rs"]
mod layout;

pub use layout::{ColumnValue, PointLayout, HTTP_EVENT, MAX_INDEX_BYTES, QUEUE_EVENT};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::analytics::Columns;

    const VERSION: &str = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f";

    #[test]
    fn request_points_land_in_the_columns_the_gate_reads() {
        let c = Columns::default();
        let p = PointLayout::request(VERSION, 503, 87.5);
        assert_eq!(p.column(&c.version), Some(ColumnValue::Text(VERSION)));
        assert_eq!(
            p.column(&c.event_type),
            Some(ColumnValue::Text(&c.http_event))
        );
        assert_eq!(p.column(&c.status), Some(ColumnValue::Number(503.0)));
        assert_eq!(p.column(&c.latency_ms), Some(ColumnValue::Number(87.5)));
        assert_eq!(c.version, "index1");
    }

    #[test]
    fn queue_points_land_in_the_columns_the_gate_reads() {
        let c = Columns::default();
        let p = PointLayout::queue_batch(VERSION, "mauntic-events", 1500.0, 7.0);
        assert_eq!(p.column(&c.version), Some(ColumnValue::Text(VERSION)));
        assert_eq!(
            p.column(&c.event_type),
            Some(ColumnValue::Text(&c.queue_event))
        );
        assert_eq!(
            p.column(&c.queue_name),
            Some(ColumnValue::Text("mauntic-events"))
        );
        assert_eq!(p.column(&c.queue_depth), Some(ColumnValue::Number(1500.0)));
        assert_eq!(p.column(&c.queue_retries), Some(ColumnValue::Number(7.0)));
    }

    #[test]
    fn points_stay_within_analytics_engine_limits() {
        let long = "x".repeat(200);
        let p = PointLayout::request(&long, 200, f64::NAN);
        assert_eq!(p.index.len(), MAX_INDEX_BYTES);
        assert_eq!(p.doubles[1], 0.0, "a NaN latency would poison every sum");
        let q = PointLayout::queue_batch(VERSION, "q", 1.0, 0.0);
        assert!(q.blobs.len() <= 20 && q.doubles.len() <= 20);
    }
}
