"""Where output goes: a local folder or a bucket, behind one interface (:mod:`bigcppn.storage.base`)."""

from .base import SCHEMES, Storage, StorageOptions, StorageStats, Upload, is_url, open_storage, split_url

__all__ = ["Storage", "Upload", "StorageOptions", "StorageStats", "SCHEMES", "open_storage", "is_url", "split_url"]
