"""Helpers of the storage tests: what a bucket and a folder hold."""

from __future__ import annotations


def objects(weed, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` in ``bucket``: key (relative to the prefix) -> bytes."""
    import obstore

    store = weed.store(bucket)
    out = {}
    for batch in obstore.list(store, prefix=prefix or None):
        for m in batch:
            key = m["path"][len(prefix):].lstrip("/") if prefix else m["path"]
            out[key] = bytes(obstore.get(store, m["path"]).bytes())
    return out


def files(root) -> dict[str, bytes]:
    """Every file under the folder ``root``: relative path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def pending_uploads(weed, bucket: str) -> list[str]:
    """Multipart uploads begun and neither completed nor aborted (SeaweedFS keeps them in the bucket's
    ``.uploads`` folder, which its filer lists on the port below the S3 one)."""
    import json
    import urllib.error
    import urllib.request

    host, port = weed.endpoint.rsplit(":", 1)
    url = f"{host}:{int(port) - 1}/buckets/{bucket.split('/')[0]}/.uploads/"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json"}),
                                    timeout=10) as r:
            entries = json.load(r).get("Entries") or []
    except urllib.error.HTTPError:
        return []
    return [e["FullPath"] for e in entries]


def comparable(outputs: dict[str, bytes]) -> dict[str, object]:
    """``outputs`` with each .szi as its entries (name -> bytes): the writer's order of tiles in the zip
    follows its threads' timing, so two renders' zips hold the same entries in orders that may differ."""
    import io
    import zipfile

    out: dict[str, object] = {}
    for key, data in outputs.items():
        if key.endswith(".szi"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                out[key] = {n: z.read(n) for n in z.namelist()}
        else:
            out[key] = data
    return out
