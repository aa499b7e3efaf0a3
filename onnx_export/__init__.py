"""Everything torch in gr-unitocom: models, losses, training, ONNX export.

The runtime package (``gnuradio.unitocom``) never imports torch; this one
imports the runtime package's dependency-free pieces (``channel_math``)
so training and the GNU Radio blocks share one channel definition.
"""
