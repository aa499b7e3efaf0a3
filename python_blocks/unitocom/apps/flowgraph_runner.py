"""Find, compile (grcc) and load the project's .grc flowgraphs from Python.

Used by the demo, the tests and the scripts, so they run exactly the
committed flowgraphs rather than hand-built copies. From the shell:

    ./unitocom run flowgraphs/sim/fading_link_ber.grc --snr-db 16 --channel-type awgn

compiles the flowgraph into build/flowgraphs/ and runs it with those options.
"""
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

_PKG = pathlib.Path(__file__).resolve().parent.parent          # the package folder, python_blocks/unitocom


def _candidates(*parts):
    env = os.environ.get("UNITOCOM_ROOT")
    if env:
        yield pathlib.Path(env, *parts)
    yield _PKG.parent.parent.joinpath(*parts)               # source tree: python_blocks/unitocom
    for up in _PKG.parents:                                  # installed: <prefix>/share/gnuradio/unitocom
        yield up.joinpath("share", "gnuradio", "unitocom", *parts)


def flowgraph_path(name):
    """Path of a committed flowgraph, e.g. ``'sim/fading_link_ber.grc'``."""
    for path in _candidates("flowgraphs", name):
        if path.is_file():
            return path
    raise FileNotFoundError(f"flowgraph {name!r} not found (set UNITOCOM_ROOT to the source tree)")


def grc_blocks_path():
    """The folder with this project's GRC block YAML, if not installed into GRC."""
    for path in _candidates("gr-unitocom", "grc"):
        if path.is_dir():
            return path
    return None


def compile_flowgraph(grc_file, out_dir):
    """Run ``grcc`` on ``grc_file``; return the generated Python file's path."""
    grc_file, out_dir = pathlib.Path(grc_file), pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    blocks = grc_blocks_path()
    if blocks is not None:
        env["GRC_BLOCKS_PATH"] = os.pathsep.join(filter(None, [str(blocks), env.get("GRC_BLOCKS_PATH")]))
    grcc = shutil.which("grcc")
    if grcc is None:
        raise RuntimeError("grcc not found: install GNU Radio 3.10 (./unitocom bootstrap does)")
    # Run grcc under this interpreter so it sees the same gnuradio.unitocom.
    proc = subprocess.run([sys.executable, grcc, "-o", str(out_dir), str(grc_file)], env=env,
                          capture_output=True, text=True)
    generated = sorted(out_dir.glob("*.py"), key=lambda p: p.stat().st_mtime)
    if proc.returncode != 0 or not generated:
        raise RuntimeError(f"grcc failed on {grc_file}:\n{proc.stdout}\n{proc.stderr}")
    return out_dir / _flowgraph_id(grc_file, generated)


def _flowgraph_id(grc_file, generated):
    import yaml
    fg_id = yaml.safe_load(grc_file.read_text())["options"]["parameters"]["id"]
    return f"{fg_id}.py" if any(p.name == f"{fg_id}.py" for p in generated) else generated[-1].name


def load_flowgraph_class(py_file):
    """Import a grcc-generated file and return its top block class."""
    py_file = pathlib.Path(py_file)
    spec = importlib.util.spec_from_file_location(f"unitocom_fg_{py_file.stem}", py_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, py_file.stem)


def main(argv=None):
    """``run FILE.grc [flowgraph options]``: compile with grcc, then run it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or not argv[0].endswith(".grc"):
        print("usage: ./unitocom run FLOWGRAPH.grc [options of the flowgraph, see --help]", file=sys.stderr)
        return 2
    grc, options = pathlib.Path(argv[0]), argv[1:]
    if not grc.is_file():
        grc = flowgraph_path(argv[0])
    out_dir = pathlib.Path(os.environ.get("UNITOCOM_ROOT", ".")) / "build" / "flowgraphs"
    py = compile_flowgraph(grc, out_dir)
    return subprocess.call([sys.executable, str(py), *options])


if __name__ == "__main__":
    sys.exit(main())
