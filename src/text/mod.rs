//! Text handling: tokenizer loading, (prompt, response) pair encoding with a
//! truncation policy, padded batches, and chat templates for decoder models.

mod batch;
pub mod chat;
mod tokenizer;

pub use batch::{pad_batch, Batch};
pub use chat::{messages_from_prompt, ChatTemplate, ChatTemplateSpec, Message, RenderedPair};
pub use tokenizer::{
    truncation_split, EncodedPair, PairTokenizer, RenderedText, TextMode, PARALLEL_TEXT_BYTES,
};
