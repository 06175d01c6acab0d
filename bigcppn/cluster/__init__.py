"""Rendering past one machine: the same work lists, run by actors on a Ray cluster.

Nothing here is imported by ``import bigcppn`` or by any local render: the
API and the command line import this package only for ``executor="ray"``
(``--executor ray``), and it needs the optional extra ``pip install
"bigcppn[ray]"``.

- :mod:`.engine`: joining or starting Ray, one actor per GPU (or per CPU-only
  node), and :class:`~.executor.RayExecutor`, the :class:`~bigcppn.core.execute.Executor`
  seam on those actors (results in order, a bounded number in flight, actors
  restarted and their unfinished jobs run again when a worker process dies);
- :mod:`.tasks`: what runs inside an actor: the network built once from the
  config (the weights come from the seed), the shared-folder check, pyramid
  jobs (tiles rendered, encoded and written atomically into the shared folder)
  and bands of a TIFF or DeepZoom file (tiles of every level inside the band
  encoded in the worker);
- :mod:`.pyramid` and :mod:`.single`: the driver's side of each.

Outputs are those of the local executor: pyramids and DeepZoom tile files byte
for byte, TIFFs too when cut in full-width bands (square blocks place the same
tiles in another order). See ``docs/scaling.md``.
"""

__all__ = ["EXECUTORS"]

EXECUTORS = ("local", "ray")
