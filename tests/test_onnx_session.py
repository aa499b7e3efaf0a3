"""Explicit onnxruntime providers: no CUDA unless it really works."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from gnuradio.unitocom.runtime import onnx_session  # noqa: E402


def tiny_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "double", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_session_runs_and_prints_no_provider_error(capfd):
    sess = onnx_session.make_session(tiny_model(), intra_op_threads=1)
    out = sess.run(None, {"x": np.ones((3, 4), np.float32)})[0]
    np.testing.assert_array_equal(out, 2 * np.ones((3, 4), np.float32))
    expected = onnx_session.providers("auto")
    assert sess.get_providers() == expected
    if not onnx_session.cuda_usable():
        assert expected == ["CPUExecutionProvider"]
    captured = capfd.readouterr()
    assert "error" not in (captured.err + captured.out).lower(), captured


def test_bad_requests_raise_clear_errors(monkeypatch):
    monkeypatch.delenv("UNITOCOM_DEVICE", raising=False)
    with pytest.raises(ValueError, match="device must be one of"):
        onnx_session.providers("tpu")
    with pytest.raises(ValueError, match="intra_op_threads"):
        onnx_session.make_session(tiny_model(), intra_op_threads=0)
    if not onnx_session.cuda_usable():
        with pytest.raises(ValueError, match="CUDA provider cannot run here"):
            onnx_session.providers("cuda")
    monkeypatch.setenv("UNITOCOM_DEVICE", "cpu")
    assert onnx_session.providers("auto") == ["CPUExecutionProvider"]
