//! Optional `tracing` spans (the crate's `tracing` feature, off by default):
//! one per lifecycle call (`create`, `start`, `exec`, `delete`, `restore`)
//! and one per phase of `create`, so an engine can see where a slow start
//! went. Without the feature the macros expand to nothing: no dependency
//! is compiled and no code runs.

/// `span!("name", field = value, ...)`: enter a span until the end of the
/// enclosing block (with the `tracing` feature; nothing without it).
macro_rules! span {
    ($name:literal $(, $($fields:tt)+)?) => {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!($name $(, $($fields)+)?).entered();
    };
}

/// `in_span!("name", expression)`: the expression, evaluated inside a span.
macro_rules! in_span {
    ($name:literal, $body:expr) => {{
        span!($name);
        $body
    }};
}
