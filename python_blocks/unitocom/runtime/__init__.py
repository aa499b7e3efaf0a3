"""Helpers the blocks run on: PDUs, frames on a tagged stream, onnxruntime
sessions and the model store, batching, worker threads, rate-limited drop logs, the Qt widgets of the display blocks."""
