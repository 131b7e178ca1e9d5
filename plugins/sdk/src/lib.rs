//! The guest-side SDK for hookgate's WebAssembly plugins.
//!
//! A plugin is one function and one macro call:
//!
//! ```
//! use hookgate_plugin_sdk::{Event, Message, Value, plugin};
//!
//! /// Forwards the producer's body unchanged, tagged with the event type.
//! fn transform(event: Event, _config: Value) -> Result<Vec<Message>, String> {
//!     let kind = event.event_type.as_deref().unwrap_or("unknown");
//!     Ok(vec![Message::json(&event.body).header("x-event-type", kind)])
//! }
//!
//! plugin!(transform);
//! # fn main() {}
//! ```
//!
//! The crate owns everything between the host's WIT interface (`wit/hookgate.wit`, world
//! `transformer`; the crate carries its own copy, so it builds outside hookgate's repository,
//! and the host's tests hold the two copies equal) and that function: decoding the event envelope and the route's config from
//! JSON text into [`Event`] and any `serde` type, turning [`Message`]s into the WIT records, and
//! the [`log`] import. Decoding failures become `Err(reason)` (a failed delivery with that
//! reason), never a panic: release builds use `panic = "abort"`, and a panic would kill the
//! instance. [`Platform`] recognises the IaC platforms hookgate has built-in event-type rules for.
//!
//! On non-wasm targets [`plugin!`] still compiles (its exports are just unused symbols), so the
//! plugin's logic is testable with a plain `cargo test`.

// The generated bindings name their runtime and module by absolute path so that the export macro
// works from the plugin's crate; this alias makes the same path resolve inside this crate.
extern crate self as hookgate_plugin_sdk;

// Only the wasm build installs it; the host's `cargo test` runs its arithmetic.
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
mod arena;
pub(crate) mod error;
mod event;
pub mod log;
mod message;
mod platform;

pub use error::Error;
pub use event::Event;
pub use message::Message;
pub use platform::Platform;
pub use serde_json::{self, Value, json};

/// The non-empty string at JSON pointer `ptr` of `v` (e.g. `str_at(&event.body, "/stack/id")`).
pub fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Every call runs in a fresh instance, so a bump allocator is all a plugin needs (see
/// `src/arena.rs`); `default-features = false` brings back Rust's usual one.
#[cfg(all(target_family = "wasm", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw bindings generated from `wit/hookgate.wit`. Plugins don't need them; [`plugin!`]
/// wires them up.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code)]
pub mod bindings {
    hookgate_plugin_sdk::__wit_bindgen::generate!({
        path: "wit",
        world: "transformer",
        pub_export_macro: true,
        export_macro_name: "__export_transformer",
        default_bindings_module: "hookgate_plugin_sdk::bindings",
        runtime_path: "hookgate_plugin_sdk::__wit_bindgen::rt",
    });
}

/// Exports `$transform` as the plugin's `transform` function.
///
/// `$transform` is any function `fn(Event, C) -> Result<Vec<Message>, E>` where `C` is
/// [`Value`] or any [`serde::de::DeserializeOwned`](https://docs.rs/serde) config type and `E`
/// is [`Error`] or `String` (its text is the failed delivery's reason). Use it once per crate,
/// at the crate root.
#[macro_export]
macro_rules! plugin {
    ($transform:path) => {
        // An anonymous const keeps the glue out of the plugin's namespace while still seeing
        // `$transform` in the enclosing module.
        #[allow(unsafe_code)]
        const _: () = {
            struct Plugin;

            impl $crate::bindings::Guest for Plugin {
                fn transform(
                    event: ::std::string::String,
                    config: ::std::string::String,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::bindings::Message>,
                    ::std::string::String,
                > {
                    $crate::__run(&event, &config, $transform)
                }
            }

    $crate::bindings::__export_transformer!(Plugin with_types_in $crate::bindings);
        };
    };
}

/// Decodes the host's arguments, calls the plugin and encodes its answer. Called by [`plugin!`].
#[doc(hidden)]
pub fn __run<C: serde::de::DeserializeOwned, E: error::Reason>(
    event: &str,
    config: &str,
    transform: fn(Event, C) -> Result<Vec<Message>, E>,
) -> Result<Vec<bindings::Message>, String> {
    let messages = transform(Event::from_json(event)?, config_from_json(config)?)
        .map_err(error::Reason::reason)?;
    Ok(messages.into_iter().map(Message::into_wit).collect())
}

/// Reads a route's `wasm.config`. A route without one sends empty text or `null`; both read as
/// `{}` so that config structs whose fields all have defaults accept them.
pub fn config_from_json<C: serde::de::DeserializeOwned>(config: &str) -> Result<C, String> {
    let text = match config.trim() {
        "" | "null" => "{}",
        text => text,
    };
    serde_json::from_str(text).map_err(|e| format!("invalid plugin config: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(event: Event, config: Value) -> Result<Vec<Message>, String> {
        Ok(vec![Message::json(
            &json!({"id": event.id, "config": config}),
        )])
    }

    #[test]
    fn run_decodes_both_arguments() {
        let event = r#"{"id":"e1","source":"s","event_type":null,"received_at":"t","headers":{},"queryParams":{},"body":{}}"#;
        let out = __run(event, "", echo).map_err(|e| e.to_string());
        let body = out.as_ref().map(|m| m[0].body.as_str());
        assert_eq!(body, Ok(r#"{"id":"e1","config":{}}"#));
    }

    #[test]
    fn bad_config_is_an_error_not_a_panic() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Strict {
            channel: String,
        }
        let err = config_from_json::<Strict>(r#"{"channel": 3}"#).map(|_| ());
        assert!(matches!(err, Err(e) if e.starts_with("invalid plugin config: ")));
    }
}
