"""image_sink: received image PDUs → PNG files and PSNR against the sent scenes."""
import pathlib

import numpy as np
import pmt
from gnuradio import gr

from .core import metrics
from .core.modalities import IMAGE_BYTES, IMAGE_SHAPE
from .core.tags import INT64_MAX
from .data import corpus
from .data.scenes import SPLITS
from .runtime import pdu_util
from .runtime.args import check_name
from .runtime.droplog import DropLog

_SCENE_KEYS = ("split", "scene_index", "corpus_seed")


class image_sink(gr.basic_block):
    """Scores (and optionally saves) the images that arrive.

    Message in ``pdu``: u8 64·64·3 RGB bytes, as ``detokenizer`` / ``rx``
    send them. When the metadata names the scene (``split``,
    ``scene_index``, ``corpus_seed``, as ``scene_source`` sets them), the
    sink regenerates the sent image and records PSNR (``metrics.psnr``).
    With ``directory`` set, each image is written there as
    ``<label>_<frame_id>.png`` (Pillow; the arrival count when the PDU has
    no ``frame_id`` >= 0). At stop it prints
    ``<label>: <n> images, PSNR mean … dB (min …, max …)``. Malformed PDUs
    (not a PDU, not 64·64·3 u8 bytes) are logged and dropped; an image whose
    scene metadata is unusable counts, unscored, and is logged.
    ``psnr_values()``, ``mean_psnr()`` and ``n_images()`` give the numbers
    to a script.

    Args:
        directory: folder for PNG files ('' = do not write files); made if missing.
        label: name used in file names and the summary line (no '/').
    """

    def __init__(self, directory="", label="image"):
        gr.basic_block.__init__(self, name="image_sink", in_sig=None, out_sig=None)
        if "/" in check_name("label", label) or "\0" in label:
            raise ValueError(f"label must be a name without '/'; got {label!r}")
        if not isinstance(directory, str):
            raise ValueError(f"directory must be a folder name, or '' for no files; got {directory!r}")
        self._dir = pathlib.Path(directory) if directory else None
        if self._dir is not None:
            try:
                self._dir.mkdir(parents=True, exist_ok=True)
            except (OSError, ValueError) as exc:
                raise ValueError(f"directory {directory!r} cannot be made: {exc}") from None
        self._label = label
        self._psnr, self._count = [], 0
        self._log = DropLog(self.logger)
        self.message_port_register_in(pmt.intern("pdu"))
        self.set_msg_handler(pmt.intern("pdu"), self._on_pdu)

    def _on_pdu(self, msg):
        try:
            vec = pmt.cdr(msg) if pmt.is_pair(msg) else None       # the size first: no copy of a huge vector
            if vec is not None and pmt.is_u8vector(vec) and pmt.length(vec) != IMAGE_BYTES:
                raise ValueError(f"{pmt.length(vec)} bytes, expected 64·64·3 = {IMAGE_BYTES}")
            meta, vec, _ = pdu_util.unpack(msg, ("u8",))
            if len(vec) != IMAGE_BYTES:
                raise ValueError(f"{len(vec)} bytes, expected 64·64·3 = {IMAGE_BYTES}")
            image = vec.reshape(IMAGE_SHAPE)
            frame_id = pdu_util.get(meta, "frame_id")
            ref = self._reference(meta)
        except Exception as exc:               # nothing a message holds may take the block down
            self._log.warn(f"dropped a PDU: {exc}")
            return
        self._count += 1
        if ref is not None:
            self._psnr.append(float(metrics.psnr(image, ref)))
        if self._dir is not None:
            ok = isinstance(frame_id, int) and not isinstance(frame_id, bool) and frame_id >= 0
            self._write(image, frame_id if ok else self._count - 1)

    def _reference(self, meta):
        """The sent scene named by the metadata, or None (logged when the names are unusable)."""
        split, index, seed = (pdu_util.get(meta, k) for k in _SCENE_KEYS)
        if index is None:                       # names no scene (e.g. a generated image): stored, not scored
            return None
        if split in SPLITS and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= INT64_MAX
                                   for v in (index, seed)):
            return corpus.scene_image(split, index, seed)
        self._log.warn(f"image not scored: unusable scene metadata split={split!r}, "
                       f"scene_index={index!r}, corpus_seed={seed!r}")
        return None

    def _write(self, image, frame_id):
        try:
            from PIL import Image
            Image.fromarray(image).save(self._dir / f"{self._label}_{frame_id:05d}.png")
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
