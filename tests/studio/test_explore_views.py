"""The explore server's pieces: live pictures kept few, older pictures' waiting tiles dropped, configs decoded
with the CLI's limits."""

from __future__ import annotations

import pytest
import torch

from bigcppn.errors import UserError
from bigcppn.network.strips import renderer_for
from bigcppn.server.app import tile_service
from bigcppn.studio.views import MAX_CONFIG_CHARS, LiveViews, decode_config, encode_config, preview_config

from conftest import small_config


def test_cancel_queued_fails_only_the_waiting_tiles():
    renderer, _plan = renderer_for(small_config(64, 64), torch.device("cpu"))
    service = tile_service(renderer, 64, 64, 32, 1, 2, 2, 90, 1 << 20)  # not started: every request waits
    futures = [service.request(6, c, r) for c in range(2) for r in range(2)]
    assert service.cancel_queued("moved on") == 4
    for f in futures:
        with pytest.raises(RuntimeError, match="moved on"):
            f.result(1)
    again = service.request(6, 0, 0)  # a new request for the same tile is a new one
    assert not again.done()
    service.start()
    assert again.result(60)[:2] == b"\xff\xd8"
    service.stop()


def test_live_views_keep_the_newest_few():
    views = LiveViews(torch.device("cpu"), keep=2)
    try:
        tags = [views.open(small_config(64, 64, seed=s))[0] for s in range(3)]
        assert len(set(tags)) == 3
        assert views.get(tags[0]) is None and views.get(tags[1]) and views.get(tags[2])
        tag, service = views.open(small_config(64, 64, seed=1))  # the same picture: the same live image
        assert tag == tags[1] and service is views.get(tags[1])
    finally:
        views.close()


def test_configs_round_trip_and_are_checked():
    cfg = small_config(300, 200, seed=4)
    assert decode_config(encode_config(cfg)) == cfg
    with pytest.raises(UserError, match="characters"):
        decode_config("A" * (MAX_CONFIG_CHARS + 1))
    small = preview_config(small_config(3000, 2000, canvas__bleed=100), 192)
    assert (small.canvas.width, small.canvas.height, small.canvas.bleed) == (192, 128, 6)
