#!/usr/bin/env python3
"""Runs flowgraphs/gui/unitocom_e2e_gui.grc for a while, saves a picture of its window, then stops it.

    ./unitocom serve --bind tcp://127.0.0.1:5593 &       # an MLLM server (see ./unitocom serve --help)
    xvfb-run -a -s "-screen 0 1280x1024x24" ./unitocom python scripts/screenshot_e2e_gui.py \\
        --png docs/gui_e2e.png --seconds 20 -- --address tcp://127.0.0.1:5593

Everything after "--" goes to the flowgraph (its --help lists them). The flowgraph runs through its own
grcc-generated main() (QApplication, signal handlers and all). --seconds after its window is made, the
window is grabbed (Qt's QWidget.grab) into --png, one JSON line reports what the widgets show (the latest
line of each text display, how many images each image display got), and SIGTERM stops the flowgraph as Ctrl-C would.
It needs a display: an X server (Xvfb will do) or QT_QPA_PLATFORM=offscreen.
"""
import argparse
import json
import os
import pathlib
import signal
import sys
import tempfile

from gnuradio.unitocom.apps import flowgraph_runner

TEXT_DISPLAYS = ("question", "answer", "caption", "transcript")
IMAGE_DISPLAYS = ("received_image", "generated_image")


def shown(tb):
    """What the window shows: the latest line of each text display, how many images each image display got."""
    report = {name: getattr(tb, name).last_text() for name in TEXT_DISPLAYS}
    report.update({name: getattr(tb, name).n_images() for name in IMAGE_DISPLAYS})
    return report


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, theirs = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--png", default="", help="where to save the picture ('' = none)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long it runs before the picture")
    parser.add_argument("--size", default="1200x860", help="window size WIDTHxHEIGHT in pixels")
    parser.add_argument("--build", default="", help="folder for the generated Python ('' = a temporary one)")
    args = parser.parse_args(ours)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        py = flowgraph_runner.compile_flowgraph(flowgraph_runner.flowgraph_path("gui/unitocom_e2e_gui.grc"),
                                                args.build or tmp)
        cls = flowgraph_runner.load_flowgraph_class(py)
        module = sys.modules[cls.__module__]
        options = module.argument_parser().parse_args(theirs)
        report = {}

        class Timed(cls):
            def __init__(self, **kw):
                from PyQt5 import Qt
                super().__init__(**kw)
                self.resize(width, height)
                Qt.QTimer.singleShot(int(args.seconds * 1000), self._finish)

            def _finish(self):
                report.update(shown(self))
                if args.png:
                    pathlib.Path(args.png).parent.mkdir(parents=True, exist_ok=True)
                    report["png"] = args.png if self.grab().save(args.png) else None
                os.kill(os.getpid(), signal.SIGTERM)            # main()'s handler: stop, wait, quit

        module.main(Timed, options)
    print(json.dumps(report, ensure_ascii=False), flush=True)
    return 0 if report and (not args.png or report.get("png")) else 1


if __name__ == "__main__":
    sys.exit(main())
