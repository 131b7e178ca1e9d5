//! hog: allocates 1 MiB chunks without bound and touches every page, so the memory really grows.
//! The host's memory limit must stop it.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

struct Hog;

impl Guest for Hog {
    fn transform(_event: String, _config: String) -> Result<Vec<Message>, String> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            for i in (0..chunk.len()).step_by(4096) {
                chunk[i] = (chunks.len() & 0xff) as u8;
            }
            chunks.push(std::hint::black_box(chunk));
        }
    }
}

export!(Hog);
