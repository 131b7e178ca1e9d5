//! reject: refuses every event with a reason, which the host reports as the route's failure.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

struct Reject;

impl Guest for Reject {
    fn transform(_event: String, _config: String) -> Result<Vec<Message>, String> {
        Err("missing field `customer`".to_string())
    }
}

export!(Reject);
