//! trap: dies. `{"mode": "unreachable"}` executes `unreachable`; anything else panics.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

struct Trap;

impl Guest for Trap {
    fn transform(_event: String, config: String) -> Result<Vec<Message>, String> {
        if config.contains("unreachable") {
            core::arch::wasm32::unreachable()
        }
        panic!("trap guest panics on purpose")
    }
}

export!(Trap);
