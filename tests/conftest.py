"""Make the source tree importable as gnuradio.unitocom without installing."""
import unitocom_testing  # noqa: F401  (side effect: sets up gnuradio.unitocom)
