//! spin: never returns. The host's epoch deadline must interrupt it.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

struct Spin;

impl Guest for Spin {
    fn transform(_event: String, _config: String) -> Result<Vec<Message>, String> {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the loop from being optimised into something else.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Spin);
