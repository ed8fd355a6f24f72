//! The [`record!`](crate::record) macro.

/// Declares a record struct and implements [`Record`](crate::Record) for it.
///
/// Field types: `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`; `str[N]` (becomes
/// `heapless::String<{4 * N}>`, up to N code points); Rust arrays of primitives up to 4
/// levels deep (`[f64; 5]`, `[[[u8; 3]; 640]; 480]`). Attributes and visibility pass
/// through. For every field `f` the struct gets an associated constant `Type::f` of type
/// [`FieldId`](crate::FieldId) for looking up its status.
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::record!(@parse [$(#[$meta])*] [$vis] $name [] $($body)*);
    };
    (@parse $m:tt $v:tt $name:ident [$($done:tt)*]
        $(#[$fm:meta])* $fv:vis $f:ident : str [ $n:literal ] $(, $($rest:tt)*)?
    ) => {
        $crate::record!(@parse $m $v $name
            [$($done)* {[$(#[$fm])*] [$fv] $f [$crate::heapless::String<{ $n * 4 }>]}]
            $($($rest)*)?);
    };
    (@parse $m:tt $v:tt $name:ident [$($done:tt)*]
        $(#[$fm:meta])* $fv:vis $f:ident : $t:ty $(, $($rest:tt)*)?
    ) => {
        $crate::record!(@parse $m $v $name
            [$($done)* {[$(#[$fm])*] [$fv] $f [$t]}]
            $($($rest)*)?);
    };
    (@parse [$($meta:tt)*] [$vis:vis] $name:ident
        [$( {[$($fm:tt)*] [$fv:vis] $f:ident [$t:ty]} )*]
    ) => {
        $($meta)*
        $vis struct $name {
            $( $($fm)* $fv $f: $t, )*
        }

        impl $crate::Record for $name {
            const FIELDS: &'static [$crate::FieldDef] = &[
                $( $crate::FieldDef::new(stringify!($f), <$t as $crate::FieldType>::KIND), )*
            ];
            const DIRECT_SCALARS: bool = true;
            const VISITS_FIELDS: bool = true;

            #[allow(unused_assignments, unused_mut, unused_variables)]
            #[inline(always)]
            fn visit<V: $crate::FieldVisitor>(
                &self,
                v: &mut V,
            ) -> ::core::result::Result<(), $crate::Error> {
                let mut k = 0usize;
                $(
                    v.field(k, &self.$f)?;
                    k += 1;
                )*
                Ok(())
            }

            #[allow(unused_assignments, unused_mut, unused_variables)]
            #[inline(always)]
            fn visit_mut<V: $crate::FieldVisitorMut>(
                &mut self,
                v: &mut V,
            ) -> ::core::result::Result<(), $crate::Error> {
                let mut k = 0usize;
                $(
                    v.field(k, &mut self.$f)?;
                    k += 1;
                )*
                Ok(())
            }

            #[allow(unused_assignments)]
            fn value(&self, i: usize) -> $crate::Value<'_> {
                let mut k = 0usize;
                $(
                    if i == k {
                        return $crate::FieldType::to_value(&self.$f);
                    }
                    k += 1;
                )*
                panic!("field index out of range")
            }

            #[allow(unused_assignments)]
            #[inline(always)]
            fn scalar_bits(&self, i: usize) -> ::core::option::Option<u64> {
                let mut k = 0usize;
                $(
                    if i == k {
                        return $crate::FieldType::scalar_bits(&self.$f);
                    }
                    k += 1;
                )*
                None
            }

            #[allow(unused_assignments)]
            #[inline(always)]
            fn set_scalar_bits(&mut self, i: usize, bits: u64) -> bool {
                let mut k = 0usize;
                $(
                    if i == k {
                        return $crate::FieldType::set_scalar_bits(&mut self.$f, bits);
                    }
                    k += 1;
                )*
                false
            }

            #[allow(unused_assignments)]
            fn set_field(
                &mut self,
                i: usize,
                v: $crate::FieldValue<'_>,
            ) -> ::core::result::Result<(), &'static str> {
                let mut k = 0usize;
                $(
                    if i == k {
                        return $crate::FieldType::set_from(&mut self.$f, v);
                    }
                    k += 1;
                )*
                Err("field index out of range")
            }
        }

        #[allow(non_upper_case_globals, dead_code)]
        impl $name {
            $(
                /// Handle of this field for status look-ups.
                pub const $f: $crate::FieldId<$t> = $crate::FieldId::new(
                    $crate::__field_index(<$name as $crate::Record>::FIELDS, stringify!($f)),
                );
            )*
        }
    };
}
