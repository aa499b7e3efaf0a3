"""The receiver's multimodal LLM (Sec. IV) in torch: ``model`` (causal Transformer, LM head,
diffusion head, kv cache), ``diffusion`` (Eq. 18–19 on tensors, samplers), ``objective``
(LM + diffusion loss over mixed-task batches), ``generate`` (torch backend of the runtime's
generation loops), ``export`` (the four ONNX graphs with metadata and parity), ``data`` (the
received-token cache: corpus items through the shipped tokenizers and JSCC link, made once),
``evaluate`` (test-split scores of an exported model through the runtime class, word error rate).
Training: ``onnx_export.train_mllm``.
The sequence layout and the noise schedule live in ``gnuradio.unitocom.mllm``."""
