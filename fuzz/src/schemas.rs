//! The schemas the targets use, with typed `record!` twins so that every read can be
//! decoded both ways and the two compared.

use flexshm_core::{record, Dtype, FieldDef, Kind, Record};

record! {
    /// The seed's SensorData (the golden vectors' `SENSOR`).
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Sensor {
        pub temperature: f64,
        pub pressure: f64,
        pub timestamp: f64,
        pub status_msg: str[32],
    }
}

record! {
    /// Every scalar dtype, a string and arrays of 1 to 3 dimensions (the golden vectors'
    /// `ALL_TYPES`).
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct AllTypes {
        pub flag: bool,
        pub i8: i8,
        pub i16: i16,
        pub i32: i32,
        pub i64: i64,
        pub u8: u8,
        pub u16: u16,
        pub u32: u32,
        pub u64: u64,
        pub f32: f32,
        pub f64: f64,
        pub name: str[5],
        pub vec_f32: [f32; 4],
        pub mat_i16: [[i16; 2]; 3],
        pub cube_u8: [[[u8; 3]; 2]; 2],
        pub pair_u64: [u64; 2],
        pub bits: [bool; 5],
        pub grid_i8: [[i8; 2]; 2],
    }
}

record! {
    /// Small records (one 64-byte buffer each), so that FIFO rings of many slots fit in
    /// a short input.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Tiny {
        pub on: bool,
        pub n: u16,
        pub s: str[2],
        pub v: [i32; 2],
    }
}

record! {
    /// Scalars only: the typed single-slot reader checks such a record, written whole in
    /// one commit, with one comparison per field before its general metadata check.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Scalars {
        pub flag: bool,
        pub n: u16,
        pub x: f64,
        pub i: i32,
        pub y: f32,
    }
}

/// A schema without a typed twin: 4-dimensional and bool arrays, odd sizes and padding.
pub const ODD: &[FieldDef] = &[
    FieldDef::new("a", Kind::Scalar(Dtype::U8)),
    FieldDef::new("text", Kind::str(3)),
    FieldDef::new("h", Kind::Scalar(Dtype::I16)),
    FieldDef::new("x", Kind::Scalar(Dtype::F64)),
    FieldDef::new("t4", Kind::array(Dtype::U16, &[2, 1, 2, 1])),
    FieldDef::new("flags", Kind::array(Dtype::Bool, &[3, 3])),
    FieldDef::new("empty_ok", Kind::str(1)),
];

/// A schema with no fields at all (records are just the slot header).
pub const NONE: &[FieldDef] = &[];

/// Which typed record (if any) matches a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// `Sensor`.
    Sensor,
    /// `AllTypes`.
    AllTypes,
    /// `Tiny`.
    Tiny,
    /// `Scalars`.
    Scalars,
    /// No typed twin.
    None,
}

/// One schema of the table.
#[derive(Debug, Clone, Copy)]
pub struct SchemaCase {
    /// Short name (for seeds and messages).
    pub name: &'static str,
    /// The fields.
    pub fields: &'static [FieldDef],
    /// Its typed twin.
    pub typed: Typed,
}

/// Every schema a target may pick, by index (inputs store the index).
pub const SCHEMAS: &[SchemaCase] = &[
    SchemaCase {
        name: "sensor",
        fields: Sensor::FIELDS,
        typed: Typed::Sensor,
    },
    SchemaCase {
        name: "all_types",
        fields: AllTypes::FIELDS,
        typed: Typed::AllTypes,
    },
    SchemaCase {
        name: "tiny",
        fields: Tiny::FIELDS,
        typed: Typed::Tiny,
    },
    SchemaCase {
        name: "odd",
        fields: ODD,
        typed: Typed::None,
    },
    SchemaCase {
        name: "none",
        fields: NONE,
        typed: Typed::None,
    },
    SchemaCase {
        name: "scalars",
        fields: Scalars::FIELDS,
        typed: Typed::Scalars,
    },
];

/// The schema with index `b` (modulo the table's length).
pub fn schema(b: u8) -> SchemaCase {
    SCHEMAS[b as usize % SCHEMAS.len()]
}

/// The typed twin of a field list, if it is one of the table's typed schemas.
pub fn typed_of(fields: &[FieldDef]) -> Typed {
    SCHEMAS
        .iter()
        .find(|s| s.fields == fields)
        .map_or(Typed::None, |s| s.typed)
}
