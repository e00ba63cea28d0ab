"""TensorFlow imported without its C++ start-up lines. Those ("oneDNN custom operations are on", "All log
messages before absl::InitializeLog()") are written while the library loads, before its logging reads
TF_CPP_MIN_LOG_LEVEL, so the file descriptor itself is caught for the import; any other line passes on."""
import os
import re
import sys
import tempfile

# Informational lines (I...) and absl's notice that logging is not set up yet; warnings and errors stay.
_START_UP = re.compile(r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog\(\)|"
                       r"To enable the following instructions:)")


def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines()
    for line in lines:
        if line and not _START_UP.match(line):
            print(line, file=sys.stderr)
    tf.get_logger().setLevel("ERROR")   # TF's deprecation notices about its own v1 API
    return tf
