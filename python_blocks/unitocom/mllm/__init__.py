"""The receiver's multimodal LLM at run time (numpy + onnxruntime, no torch), and its server.

* ``layout``    – the packed sequences of the four tasks (vqa, t2i, asr, dsc), control tokens, vocabulary hash
* ``schedule``  – the DDPM noise schedule, Eq. (18)'s closed form and the DDPM/DDIM steps
  (one definition for numpy and torch)
* ``sampling``  – greedy and top-p choice of the next word
* ``generate``  – the generation loops (text, image tokens) over a backend, with or without the kv cache
* ``engine``    – ``MLLM``: the exported graphs in onnxruntime behind ``answer``, ``describe``,
  ``transcribe`` and ``generate_image_tokens``, with input checks
* ``schema``    – the versioned ZeroMQ wire format (JSON header + raw array frames)
* ``batcher``   – ``Batcher``: per-task bounded queues, gathering window, batches, deadlines (no sockets)
* ``server``    – the ZeroMQ ROUTER transport (``./unitocom serve``), CURVE keys, health
* ``client``    – ``Client``: a DEALER-socket client with request ids, timeouts and reconnects
* ``requests``, ``requester`` – the ``mllm_client`` block's request forming by session and its sender thread
* ``image_checks`` – attribute checks of generated images (t2i evaluation)
"""
