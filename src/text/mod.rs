//! Text handling: tokenizer loading, (prompt, response) pair encoding with a
//! truncation policy, and padded batches.

mod batch;
mod tokenizer;

pub use batch::{pad_batch, Batch};
pub use tokenizer::{truncation_split, EncodedPair, PairTokenizer};
