"""Everything torch in gr-unitocom: models, losses, training, ONNX export.

The runtime package (``gnuradio.unitocom``) never imports torch; this one
imports its torch-free pieces (``dsp.channel_math``, ``core.jscc_frame``,
``core.metrics``, the model store) so training and the GNU Radio blocks
share one channel, one frame format and one set of metrics.

Layout:

* shared: ``layers`` (Transformer pieces), ``channel`` (Eq. 2 on tensors),
  ``loop`` (the one training loop: seeds, budget, schedule, checkpoints),
  ``export`` (ONNX export with metadata and parity), ``from_onnx`` (shipped
  ONNX weights back into torch), ``datasets`` (torch ``Dataset``s);
* ``tokenizers/``: F_α/F_β networks, the σ-GenIB/VAE objectives, per-modality tasks;
* ``jscc/``: the SNR/rate-adaptive T/R, its link and scoring grid, token data;
* command lines, which no other module imports (but for the alias
  ``train_image_tokenizer``, a wrapper of ``train_tokenizer``):
  ``train_tokenizer``, ``train_jscc``, ``finetune_link``.
"""
