//! wrong-world: a component of another world (exports `run`, imports `test:wrong/vault`).
//! The host must refuse it at load and say what is wrong.

wit_bindgen::generate!({ path: "wit", world: "runner" });

struct Wrong;

impl Guest for Wrong {
    fn run() -> String {
        // Calling the import keeps it in the component's import list.
        test::wrong::vault::secret()
    }
}

export!(Wrong);
