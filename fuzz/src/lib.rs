//! The harness shared by the flexshm-core fuzz targets (`fuzz_targets/`): memory for a
//! region, the schemas, how an input is read, the checks, and what is done to a segment.
//! docs/FUZZING.md describes the targets and their input formats.

pub mod check;
pub mod exercise;
pub mod input;
pub mod mem;
pub mod schemas;

/// Checks the harness's own assumptions (the typed schemas are the golden vectors'
/// schemas); the targets call it once at start-up, the seed generator too.
pub fn self_check() {
    use flexshm_core::Record;
    assert_eq!(schemas::Sensor::FIELDS, flexshm_vectors::SENSOR);
    assert_eq!(schemas::AllTypes::FIELDS, flexshm_vectors::ALL_TYPES);
}
