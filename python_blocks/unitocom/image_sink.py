"""image_sink: received image PDUs → PNG files and PSNR against the sent scenes."""
import pathlib

import numpy as np
import pmt
from gnuradio import gr

from . import pdu_util
from .data import corpus
from .droplog import DropLog


class image_sink(gr.basic_block):
    """Scores (and optionally saves) the images that arrive.

    Message in ``pdu``: u8 64·64·3 RGB bytes, as ``detokenizer`` / ``rx``
    send them. When the metadata names the scene (``split``,
    ``scene_index``, ``corpus_seed``, as ``scene_source`` sets them), the
    sink regenerates the sent image and records PSNR = 10·log10(255²/MSE).
    With ``directory`` set, each image is written there as
    ``<label>_<frame_id>.png`` (Pillow). At stop it prints
    ``<label>: <n> images, PSNR mean … dB (min …, max …)``. Malformed PDUs
    are logged and dropped. ``psnr_values()``, ``mean_psnr()`` and
    ``n_images()`` give the numbers to a script.

    Args:
        directory: folder for PNG files ('' = do not write files).
        label: name used in file names and the summary line.
    """

    def __init__(self, directory="", label="image"):
        gr.basic_block.__init__(self, name="image_sink", in_sig=None, out_sig=None)
        if not label:
            raise ValueError("label must be a non-empty name")
        self._dir = pathlib.Path(directory) if directory else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._label = label
        self._psnr, self._count = [], 0
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("pdu"), self._on_pdu)

    def _on_pdu(self, msg):
        try:
            meta, vec, _ = pdu_util.unpack(msg, ("u8",))
            if len(vec) != 64 * 64 * 3:
                raise ValueError(f"{len(vec)} bytes, expected 64·64·3")
        except ValueError as exc:
            self._log.warn(f"dropped a PDU: {exc}")
            return
        image = vec.reshape(64, 64, 3)
        self._count += 1
        ref = self._reference(meta)
        if ref is not None:
            mse = np.mean((image.astype(np.float64) - ref) ** 2)
            self._psnr.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
        if self._dir is not None:
            self._write(image, pdu_util.get(meta, "frame_id", self._count - 1))

    def _reference(self, meta):
        split, index, seed = (pdu_util.get(meta, k) for k in ("split", "scene_index", "corpus_seed"))
        if split not in ("train", "val", "test") or not isinstance(index, int) or not isinstance(seed, int):
            return None
        return corpus.scene_image(split, index, seed).astype(np.float64)

    def _write(self, image, frame_id):
        try:
            from PIL import Image
            Image.fromarray(image).save(self._dir / f"{self._label}_{int(frame_id):05d}.png")
        except (ImportError, OSError, ValueError, TypeError) as exc:
            self._log.warn(f"could not write a PNG: {exc}")

    def psnr_values(self):
        return list(self._psnr)

    def mean_psnr(self):
        return float(np.mean(self._psnr)) if self._psnr else float("nan")

    def n_images(self):
        return self._count

    def stop(self):
        if self._psnr:
            print(f"{self._label}: {self._count} images, PSNR mean {self.mean_psnr():.2f} dB "
                  f"(min {min(self._psnr):.2f}, max {max(self._psnr):.2f}) over {len(self._psnr)} scored", flush=True)
        else:
            print(f"{self._label}: {self._count} images (none scored)", flush=True)
        return True
