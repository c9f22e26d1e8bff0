//! The bake: its test starts with the first whole minute at 100%.

use super::*;

#[test]
fn first_ticks_at_100_percent_say_the_bake_test_has_not_started() {
    let (s, _) = run(ramping(), 1..=21, HEALTHY);
    assert_eq!(s.phase, Phase::Baking);
    let a = s.last_assessment.as_ref().expect("assessed");
    let said = a.errors.to_string();
    assert!(
        said.contains("bake test starts with the first whole minute at 100%"),
        "{said}"
    );
    // Minute 21 (the first whole one at 100%) is counted at minute 24.
    let (s, _) = run(s, 22..=24, HEALTHY);
    let a = s.last_assessment.as_ref().expect("assessed");
    assert!(a.errors_test.is_some() && !a.errors.to_string().contains("bake test starts"));
}
