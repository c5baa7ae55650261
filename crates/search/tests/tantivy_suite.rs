//! The search behaviour suite on the embedded Tantivy engine.

use cloudpf_search::TantivyEngine;

cloudpf_search::search_engine_suite!(dir => TantivyEngine::new(dir.path()));
