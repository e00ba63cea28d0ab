"""SHA-256 of a file: what a run log records of a user's model file, and what names its loaded module."""
import hashlib


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
