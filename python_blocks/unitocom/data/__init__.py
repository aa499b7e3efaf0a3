"""An offline, deterministic CLEVR-style multimodal corpus (numpy only).

Scenes of CLEVR's objects rendered to small RGB images, visual questions
with answers computed from the scene graph, captions that a scene can be
rendered from, and spoken versions of the sentences (espeak-ng, 16 kHz).
Everything is a pure function of (split, index, seed).

* ``vocab``     – attributes and the one word-level vocabulary
* ``scenes``    – scene graphs: sampling, relations, scene seeds
* ``render``    – a small numpy rasterizer (perspective ground plane, shading)
* ``questions`` – CLEVR-style question templates with balanced answers
* ``captions``  – captions from scenes, and scenes from captions
* ``speech``    – espeak-ng synthesis, speakers kept apart between splits
* ``corpus``    – the CLI that materialises splits; ``loaders`` reads them
"""
