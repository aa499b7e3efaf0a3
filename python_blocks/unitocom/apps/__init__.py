"""Runnable programs: the demo, the headless flowgraph runner and the
Monte-Carlo link simulation (``python -m gnuradio.unitocom.apps.<name>``)."""
