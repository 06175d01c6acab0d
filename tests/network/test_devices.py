"""The device policy: one object a torch.device.type, found through a registry, owns what differs."""

import pytest
import torch

from bigcppn.errors import UserError
from bigcppn.estimate.plan import estimate_seconds
from bigcppn.estimate.measure import Rates
from bigcppn.network import devices
from bigcppn.network.devices import CpuPolicy, CudaPolicy, DevicePolicy, pick_device, policy_for, register_policy


def test_policies_are_found_by_device_or_type_name():
    assert isinstance(policy_for(torch.device("cpu")), CpuPolicy)
    assert isinstance(policy_for(torch.device("cuda")), CudaPolicy)  # a device object needs no GPU
    assert policy_for("cuda:1") is policy_for("cuda")
    with pytest.raises(ValueError, match="no device policy for 'meta'"):
        policy_for(torch.device("meta"))


def test_auto_is_cuda_when_present_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="--device cuda was asked for but no CUDA device is available"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device("cuda") == torch.device("cuda")


def test_what_each_policy_decides():
    cpu, cuda = policy_for("cpu"), policy_for("cuda")
    assert (cpu.chunk, cpu.level_chunk, cpu.sheet_pixels) == (devices.CPU_CHUNK,) * 3
    assert (cuda.chunk, cuda.level_chunk, cuda.sheet_pixels) == (2**62, 1 << 22, 2**22)
    assert cpu.job_samples(123) == devices.CPU_JOB_SAMPLES and cuda.job_samples(123) == 123
    assert cpu.default_batch(torch.device("cpu"), 16) == devices.CPU_BATCH
    assert cuda.strip_workers() == 2 and cuda.strip_workers(3) == 3 and cuda.tile_workers() == 0
    assert cpu.strip_workers(3) == 3 and cpu.tile_workers() >= 1
    assert cpu.host_pixels(100, 3) == 300 and cuda.host_pixels(100, 3) == 0
    assert cpu.device_memory(torch.device("cpu")) is None
    assert not cpu.compiles_kernel and cuda.compiles_kernel
    assert cpu.renders_whole_strips is False and cuda.renders_whole_strips is True
    # The estimate: on a CPU the writer takes cores from the network; on a GPU they run side by side.
    rates = Rates(2.0, 50.0, writer_cores=2.0, network_cores=2.0)
    assert estimate_seconds(100, rates, "cpu") > estimate_seconds(100, rates, "cuda")


def test_a_new_device_plugs_in_by_registering(monkeypatch):
    monkeypatch.setattr(devices, "_POLICIES", dict(devices._POLICIES))
    monkeypatch.setattr(devices, "_AUTO_ORDER", list(devices._AUTO_ORDER))

    class MetaPolicy(CpuPolicy):
        name = "meta"

    policy = register_policy(MetaPolicy())
    assert policy_for(torch.device("meta")) is policy and isinstance(policy, DevicePolicy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")  # not registered for auto
