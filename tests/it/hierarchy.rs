//! Smoke test of the whole hierarchy in process (more in the modules beside this one).

use crate::harness::Hierarchy;

#[test]
fn resolves_in_both_modes_then_from_cache() {
    let h = Hierarchy::start();
    let mut c = h.client("alice");
    assert_eq!(c.ask("1, www.google.com, R"), "0X01, default_local, 142.250.72.4");
    assert_eq!(c.ask("2, google.com, I"), "0X00, default_local, 142.250.72.4");
    assert_eq!(c.ask("3, nasa.gov, I"), "0X01, default_local, 52.0.14.116");
}
