"""Shared by the benchmark scripts: the machine, and how busy the rest of it was.

:func:`machine_info` describes the machine and the versions for the JSON
output. A benchmark run beside another busy process is not to be trusted
(on 2 cores one busy neighbour makes torch's threads wait for each other);
:class:`OtherLoad` measures, from ``/proc/stat``, the CPU time other
processes took while a run went on.
"""

import os
import platform
import time


def machine_info(device):
    """Platform, CPUs, library versions, torch threads and device, as a dict."""
    import numpy as np
    import sklearn
    import torch

    import skvae

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "skvae": skvae.__version__,
        "skvae_path": os.path.dirname(skvae.__file__),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _busy_cpu_seconds():
    """CPU seconds used by the whole machine and by this process, or None.

    From /proc/stat (Linux): the difference over a run, minus this process's
    own share, is what other processes took from the cores meanwhile. A
    benchmark run beside another busy process is not to be trusted.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


class OtherLoad:
    """Context manager measuring the CPU time other processes used meanwhile."""

    def __enter__(self):
        self.start = _busy_cpu_seconds()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        end = _busy_cpu_seconds()
        wall = time.perf_counter() - self.t0
        if self.start is None or end is None or wall <= 0:
            self.cores = None
        else:
            other = (end[0] - self.start[0]) - (end[1] - self.start[1])
            self.cores = max(0.0, other / wall)  # average cores busy elsewhere
        return False
