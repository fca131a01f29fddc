"""The ground floor of mtf-rl: contracts every other package builds on.

Only the standard library, numpy and PyYAML-free code lives here (torch is imported lazily by
the TorchScript policy loader), so the simulator, the RL core, the storage library, the jobs
and the DAG files can all import it.

- `core.schema`    dimensions, head order, the state layout (named slices) and its scales
- `core.fusion`    the fusion formula and the action mapping (numpy)
- `core.reward`    the reward weights and the two-critic-set reward formula
- `core.policy`    the `Policy` protocol, fixed weights, TorchScript loader, callable policies
- `core.artifact`  the candidate's artifact folder: version key and file names
- `core.ds`        day partitions: validation and training windows
- `core.checksum`  file sha256
- `core.settings`  the project root and the one dict-to-dataclass helper
"""
