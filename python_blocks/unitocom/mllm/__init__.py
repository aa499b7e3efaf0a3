"""The receiver's multimodal LLM at run time (numpy + onnxruntime, no torch).

* ``layout``   – the packed sequences of the three tasks (vqa, t2i, asr), control tokens, vocabulary hash
* ``schedule`` – the DDPM noise schedule, Eq. (18)'s closed form and the DDPM/DDIM steps
  (one definition for numpy and torch)
* ``sampling`` – greedy and top-p choice of the next word
* ``generate`` – the generation loops (text, image tokens) over a backend, with or without the kv cache
* ``engine``   – ``MLLM``: the exported graphs in onnxruntime behind ``answer``, ``transcribe`` and
  ``generate_image_tokens``, with input checks
"""
