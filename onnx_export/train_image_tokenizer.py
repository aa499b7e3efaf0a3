"""Image tokenizer training: ``train_tokenizer --modality image`` under its first name.

    ./unitocom python -m onnx_export.train_image_tokenizer --corpus data/clevr64 --variant genib \\
        --tokens 32 --minutes 50 --out runs/image-genib-32

Kept because model cards record this command; see ``onnx_export.train_tokenizer``.
"""
import sys

from onnx_export.train_tokenizer import main as _main


def main(argv=None):
    """``train_tokenizer.main`` with ``--modality image`` put first; returns what it returns (metrics, paths)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return _main(["--modality", "image"] + argv, command="onnx_export.train_image_tokenizer")


if __name__ == "__main__":
    main()
