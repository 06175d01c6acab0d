"""The CPPN: seeded weights, every option, and the fast pass equal to the reference."""

import math

import pytest
import torch

from bigcppn.config import ACTIVATIONS, NetworkConfig
from bigcppn.network.model import CPPN, hsv_to_rgb


def grid(n=4096, span=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * span
    return xy[:, 0], xy[:, 1]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fast_pass_matches_reference(act):
    net = NetworkConfig(hidden=(16, 8, 16), activation=act, inputs=("x", "y", "r"))
    m = CPPN(net, seed=3)
    x, y = grid()
    with torch.no_grad():
        ref, fast = m(x, y), m.evaluate(x, y)
    assert ref.shape == fast.shape == (x.shape[0], 3)
    # within a tenth of an 8-bit level
    assert (ref - fast).abs().max().item() < 0.1 / 255


@pytest.mark.parametrize("seed", range(5))
def test_fast_pass_matches_reference_on_random_mixed_networks(seed):
    g = torch.Generator().manual_seed(seed)
    depth = int(torch.randint(0, 6, (1,), generator=g))
    widths = tuple(int(w) for w in torch.randint(1, 40, (depth,), generator=g))
    acts = tuple(ACTIVATIONS[int(i)] for i in torch.randint(0, len(ACTIVATIONS), (depth,), generator=g))
    out = ACTIVATIONS[int(torch.randint(0, len(ACTIVATIONS), (1,), generator=g))]
    net = NetworkConfig(hidden=widths, activation=acts, output_activation=out, weight_scale=2.0,
                        inputs=("x", "y", "r", "z"), z_size=3)
    m = CPPN(net, seed=seed)
    x, y = grid(2000, span=3.0)
    with torch.no_grad():
        assert (m(x, y) - m.evaluate(x, y)).abs().max().item() < 0.5 / 255


def test_seed_decides_the_weights():
    net = NetworkConfig()
    a, b, c = CPPN(net, 1), CPPN(net, 1), CPPN(net, 2)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_initialisations_have_their_ranges():
    fan_in = 16
    d = CPPN(NetworkConfig(weight_init="default", bias_init="default"), 0)
    w = d.ref_w[3]
    assert w.abs().max() <= 1 / math.sqrt(fan_in) and w.abs().max() > 0.8 / math.sqrt(fan_in)
    u = CPPN(NetworkConfig(weight_init="uniform", weight_scale=100.0), 0)
    assert 80 < u.ref_w[3].abs().max() <= 100
    n = CPPN(NetworkConfig(hidden=(256,) * 2, weight_init="normal", weight_scale=3.0), 0)
    assert 2.7 < n.ref_w[1].std().item() < 3.3


def test_biases_off_keeps_weights():
    on, off = CPPN(NetworkConfig(), 5), CPPN(NetworkConfig(bias=False), 5)
    assert all(torch.equal(a, b) for a, b in zip(on.ref_w, off.ref_w))
    assert all((b == 0).all() for b in off.ref_b[1:])


def test_bias_on_the_first_layer_only():
    on, first = CPPN(NetworkConfig(), 5), CPPN(NetworkConfig(bias="first"), 5)
    assert torch.equal(on.ref_b[0], first.ref_b[0])
    assert all((b == 0).all() for b in first.ref_b[1:])


def test_latent_z_from_seed_or_given():
    drawn = CPPN(NetworkConfig(inputs=("x", "y", "z"), z_size=4), 0)
    assert drawn.z.shape == (4,) and drawn.z.abs().max() <= 1.0
    given = CPPN(NetworkConfig(inputs=("x", "y", "z"), z_size=2, z=(0.5, -0.5)), 0)
    assert given.z.tolist() == [0.5, -0.5]
    other = CPPN(NetworkConfig(inputs=("x", "y", "z"), z_size=2, z=(0.1, 0.9)), 0)
    x, y = grid(100)
    with torch.no_grad():
        assert not torch.equal(given(x, y), other(x, y)), "z changes the picture"


def test_colour_modes():
    x, y = grid(500)
    with torch.no_grad():
        grey = CPPN(NetworkConfig(color="grey"), 0)(x, y)
        hsv = CPPN(NetworkConfig(color="hsv"), 0)(x, y)
    assert grey.shape == (500, 1)
    assert hsv.shape == (500, 3) and hsv.min() >= 0 and hsv.max() <= 1


def test_hsv_to_rgb_known_colours():
    hsv = torch.tensor([[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5], [1.0, 1, 1]], dtype=torch.float64)
    rgb = hsv_to_rgb(hsv)
    expect = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [1, 0, 0]], dtype=torch.float64)
    assert torch.allclose(rgb, expect, atol=1e-12)


def test_moves_to_device(device):
    m = CPPN(NetworkConfig(), 0).to(device)
    x, y = grid(100)
    with torch.no_grad():
        out = m.evaluate(x.to(device), y.to(device)).cpu()
        ref = CPPN(NetworkConfig(), 0).evaluate(x, y)
    assert (out - ref).abs().max().item() < 0.5 / 255
