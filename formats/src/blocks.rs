//! ggml block layouts (owned by the blocks/dequant work).
