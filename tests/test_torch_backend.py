"""The torch backend: devices, what it refuses, its generators, and that it follows the other
backends where it should (same seed, same weights and shuffles)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from gdnet.backends import torch_backend

import gdnet as gd
from gdnet import backends, nn

torch = pytest.importorskip("torch")


def test_cpu_and_meta_devices():
    with gd.use_backend("torch", "cpu") as cpu:
        t = gd.tensor([1.0, 2.0])
        assert isinstance(t.data, torch.Tensor) and t.device == torch.device("cpu") == cpu.device
        assert cpu.sync_is_free and cpu.holds_values and cpu.describe() == "torch on cpu"
    with gd.use_backend("torch:meta") as meta:
        t = gd.zeros((2, 3))
        assert t.data.is_meta and t.shape == (2, 3) and t.dtype == torch.float32
        assert not meta.sync_is_free and not meta.holds_values
        with pytest.raises(NotImplementedError, match="no data"):
            t.numpy()  # a meta tensor has no values to copy


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(device):
    with pytest.raises(gd.BackendUnavailableError, match="torch has no CUDA device here"):
        gd.set_backend("torch", device)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_apple_silicon_is_a_clear_error():
    with pytest.raises(gd.BackendUnavailableError, match="torch has no MPS device here"):
        gd.set_backend("torch", "mps")


@pytest.mark.parametrize("device, message", [("tpu", "unknown torch device 'tpu'"),
                                             ("xla", "not supported by gdnet")])
def test_unknown_devices_are_named(device, message):
    with pytest.raises((ValueError, gd.BackendUnavailableError), match=message):
        gd.set_backend("torch", device)


def test_a_device_without_float64_refuses_it_clearly(monkeypatch):
    """MPS has no float64; the backend says so instead of failing inside torch (simulated on
    the CPU, as this machine has no MPS)."""
    assert not torch_backend.has_float64("mps") and torch_backend.has_float64("cuda")
    monkeypatch.setattr(torch_backend, "has_float64", lambda device_type: False)
    with gd.use_backend("torch", "cpu") as backend:
        assert not backend.supports_dtype("float64") and backend.supports_dtype("float32")
        with pytest.raises(TypeError, match="torch on cpu has no float64; expected float32"):
            gd.tensor([1.0, 2.0], dtype="float64")
        with pytest.raises(TypeError, match="has no float64"):
            gd.tensor(np.array([1.0, 2.0]))  # a float64 host array keeps its dtype
        assert gd.tensor([1.0, 2.0]).dtype == torch.float32


def test_same_seed_same_initial_weights_and_shuffles_as_numpy():
    def draw(name, device=None):
        with gd.use_backend(name, device):
            gd.manual_seed(3)
            model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
            dataset = gd.data.ArrayDataset(np.arange(10, dtype=np.float32)[:, None], np.arange(10) % 2)
            loader = gd.data.DataLoader(dataset, batch_size=10, shuffle=True)
            order = next(iter(loader))[0].numpy()[:, 0]
            return [p.numpy() for p in model.parameters()], order

    (numpy_weights, numpy_order), (torch_weights, torch_order) = draw("numpy"), draw("torch", "cpu")
    for a, b in zip(numpy_weights, torch_weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(numpy_order, torch_order)


def test_dropout_draws_from_a_seeded_torch_generator_on_the_device():
    with gd.use_backend("torch", "cpu"):
        gd.manual_seed(5)
        host_before = gd._backend.host_rng().get_state()
        dropped = nn.functional.dropout(gd.ones((4, 6)), p=0.5).numpy()
        assert gd._backend.host_rng().get_state() == host_before  # nothing drawn on the host
    expected = torch.empty((4, 6)).bernoulli_(0.5, generator=torch.Generator().manual_seed(5)) * 2.0
    np.testing.assert_array_equal(dropped, expected.numpy())


def test_generator_state_round_trips_through_a_checkpoint(tmp_path):
    with gd.use_backend("torch", "cpu"):
        model = nn.Linear(3, 2)
        gd.save(tmp_path / "c.safetensors", model)
        first = gd.rand(5).numpy()
        gd.rand(7)
        gd.load_into(tmp_path / "c.safetensors", model)
        np.testing.assert_array_equal(gd.rand(5).numpy(), first)


def test_tensors_move_between_torch_and_other_backends():
    source = torch.arange(4, dtype=torch.float32)
    with gd.use_backend("numpy"):
        moved = gd.tensor(source)
        assert type(moved.data) is np.ndarray and moved.tolist() == [0.0, 1.0, 2.0, 3.0]
    with gd.use_backend("torch", "cpu"):
        back = gd.tensor(moved)
        assert isinstance(back.data, torch.Tensor) and back.tolist() == [0.0, 1.0, 2.0, 3.0]
        back.data[0] = 9.0
        assert moved.tolist()[0] == 0.0  # a copy, not a view
        meta = gd.tensor(back).data.to("meta")
    with pytest.raises(gd.DeviceMismatchError, match="torch on cpu and torch on meta"):
        back + gd.Tensor(meta)


def test_read_only_host_arrays_are_copied_not_shared():
    values = np.arange(3, dtype=np.float32)
    values.flags.writeable = False
    with gd.use_backend("torch", "cpu"):
        t = gd.tensor(values)
        t.data += 1.0
    assert values.tolist() == [0.0, 1.0, 2.0]


def test_auto_prefers_cupy_then_torch_on_a_gpu_then_numpy(monkeypatch):
    cupy, torch_class = backends.backend_class("cupy"), backends.backend_class("torch")
    monkeypatch.setattr(cupy, "auto_device", classmethod(lambda cls: None))
    monkeypatch.setattr(torch_class, "auto_device", classmethod(lambda cls: None))
    assert backends.auto() == ("numpy", "cpu")
    monkeypatch.setattr(torch_class, "auto_device", classmethod(lambda cls: "mps"))
    assert backends.auto() == ("torch", "mps")
    monkeypatch.setattr(cupy, "auto_device", classmethod(lambda cls: "cuda:0"))
    assert backends.auto() == ("cupy", "cuda:0")


def test_auto_on_a_machine_without_a_gpu_leaves_torch_unimported():
    if torch_backend.TorchBackend.auto_device() is not None:
        pytest.skip("this machine has a GPU torch can use")
    code = "import sys, gdnet as gd; print(gd.set_backend('auto').name, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numpy", "False"]


def test_the_test_matrix_has_the_torch_rows():
    import conftest

    ids = [row.id for row in conftest.matrix()]
    assert {"torch-cpu", "torch-meta", "torch-cuda"} <= set(ids)
    assert not backends.backend_class("torch").device_holds_values("meta")
