"""Load a text-classification data set as raw train/validation/test frames, with its version.

`load_splits` (in `sources`) reads a file, a folder of split files or a Hugging Face dataset,
in the workspace or at a git revision, and records the `DataVersion` it read. The loader fails
only on what makes a source unreadable (missing path, empty file, invalid UTF-8, broken CSV
quoting, unparsable JSON/Parquet), with a `DataLoadError` naming the file and place. Bad rows
(empty cells, unknown labels, short texts) are kept as they are, for the validation step to
report. Each frame's index is the 0-based data-row number in its source file, also after
splitting.

Modules (each imports its siblings directly, never this package): `sources` (paths, folders,
HF datasets, `load_splits`) uses `splits` (splitting, subsampling, `RawSplits`), `versioning`
(`DataVersion`, content hash, git/DVC lookups, the DVC workspace check) and `readers` (file
formats); those two use `trees` (workspace or git+DVC file access). `DataLoadError` lives in
the leaf `components.errors`, so `components.examples` can raise it without importing this
package.
"""

from components.data.readers import FORMATS
from components.data.sources import HF_PREFIX, SPLIT_NAMES, load_splits
from components.data.splits import SPLITS, RawSplits
from components.data.versioning import DataVersion, check_dvc_workspace, content_hash
from components.errors import DataLoadError
from components.examples import encode_labels  # its old home; labels belong to examples

__all__ = [
    "FORMATS",
    "HF_PREFIX",
    "SPLITS",
    "SPLIT_NAMES",
    "DataLoadError",
    "DataVersion",
    "RawSplits",
    "check_dvc_workspace",
    "content_hash",
    "encode_labels",
    "load_splits",
]
