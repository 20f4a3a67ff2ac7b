#!@BERT_PYTHON_SHEBANG@
"""bert-worker-py: the engine's Python front (docs/gaudi.md).

    bert-worker-py pretrain --config CONFIG.json
    bert-worker-py export   --config CONFIG.json

The same commands as bert-worker (docs/worker-protocol.md): the same
CONFIG.json, the same JSON-line reports on stdout, the same exit statuses,
all of them the engine's C++ (bertd_engine, built beside this script by
engine/python/CMakeLists.txt). Python does only what cannot be done from C++:
for device "hpu" it imports Intel Gaudi's PyTorch bridge, creates the "hccl"
process group through torch.distributed and hands it to the engine, and passes
the bridge's mark_step as the hook the engine calls after each backward and
each optimizer step. On cpu and cuda it creates the "gloo" or "nccl" group
the same way, so this front runs anywhere a PyTorch with torch.distributed does.
"""
import argparse
import datetime
import os
import sys


def hpu_runtime(settings, spec_error):
    """Loads Intel Gaudi's bridge for this rank (one HPU per local rank) and returns its step hooks."""
    # The engine's C++ ops cannot be wrapped by torch.compile, so lazy mode (graphs
    # ended by mark_step) is the graph mode they get. Read when the bridge loads.
    os.environ.setdefault("PT_HPU_LAZY_MODE", "1")
    # What torchrun would have set: the bridge maps a process to the card of its LOCAL_RANK.
    os.environ.update(RANK=str(settings["rank"]), LOCAL_RANK=str(settings["local_rank"]),
                      WORLD_SIZE=str(settings["world_size"]))
    try:
        import habana_frameworks.torch.core as htcore
        import habana_frameworks.torch.distributed.hccl as hccl
    except ImportError as e:
        raise spec_error(f'device "hpu" needs Intel Gaudi\'s PyTorch bridge (habana_frameworks), '
                         f'which {sys.executable} cannot import: {e}') from e
    # As for a custom launcher: the bridge takes the module whose id is the local rank.
    hccl.initialize_distributed_hpu(settings["world_size"], settings["rank"], settings["local_rank"])
    return {"after_backward": htcore.mark_step, "after_optimizer_step": htcore.mark_step}


def process_group(settings, spec_error):
    """The default group of torch.distributed, met at the config's master (rank 0 serves the store)."""
    import torch.distributed as dist
    device, backend = settings["device"], settings["backend"]
    wanted = {"hpu": "hccl", "cuda": "nccl"}.get(device, "gloo")
    if backend != wanted and not (device == "cuda" and backend == "gloo"):
        raise spec_error(f'distributed.backend "{backend}" cannot run on device "{device}" (use "{wanted}")')
    if device == "cuda":
        import torch
        torch.cuda.set_device(settings["local_rank"])
    timeout = datetime.timedelta(seconds=settings["timeout_seconds"])
    store = dist.TCPStore(settings["master_addr"], settings["master_port"], settings["world_size"],
                          settings["rank"] == 0, timeout=timeout)
    if backend == "gloo" and settings["local_addr"]:
        # Gloo's transport on the address the agent says the other hosts reach this one at.
        options = dist.ProcessGroupGloo._Options()
        options._timeout = timeout
        options._devices = [dist.ProcessGroupGloo.create_device(hostname=settings["local_addr"])]
        return dist.ProcessGroupGloo(store, settings["rank"], settings["world_size"], options)
    # Else torch.distributed's own choices, as under torchrun (GLOO_SOCKET_IFNAME, HCCL's and NCCL's).
    dist.init_process_group(backend, store=store, rank=settings["rank"],
                            world_size=settings["world_size"], timeout=timeout)
    return dist.distributed_c10d._get_default_group()


def make_prepare(engine):
    def prepare(settings):
        runtime = {}
        if settings["device"] == "hpu":
            runtime.update(hpu_runtime(settings, engine.SpecError))
        if settings["world_size"] > 1:
            runtime["process_group"] = process_group(settings, engine.SpecError)
        return runtime
    return prepare


def main():
    parser = argparse.ArgumentParser(prog="bert-worker-py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("pretrain", "export"):
        commands.add_parser(name).add_argument("--config", required=True, help="CONFIG.json")
    args = parser.parse_args()

    # Reports go to the original stdout, through the engine; whatever Python or
    # a library prints goes to stderr, which the agent forwards as log lines.
    report_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        import torch  # noqa: F401  (loads the libtorch the module links)
        import bertd_engine as engine  # beside this script
    except ImportError as e:
        print(f"bert-worker-py: cannot load the engine module: {e}", file=sys.stderr)
        return 1
    engine.catch_sigterm()
    if args.command == "export":
        return engine.export(args.config, report_fd=report_fd)
    return engine.pretrain(args.config, prepare=make_prepare(engine), report_fd=report_fd)


if __name__ == "__main__":
    sys.exit(main())
