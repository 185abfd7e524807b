"""Every way a restore can fail has its exception type, and names the path.

No folder, an empty folder or a folder without a checkpoint raise
`FileNotFoundError`; an unfinished save and damaged metadata or arrays raise
`CheckpointCorruptedError`; another format raises `CheckpointMismatchError`.
A process killed with SIGKILL while saving never leaves a checkpoint that
restores wrong.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import orbax.checkpoint as ocp
import pytest

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from tests.checkpoint.common import bitwise_equal, make_params
from tests.subprocesses import ROOT


@pytest.fixture
def saved(tmp_path):
    params = make_params()
    return Path(ckpt.save(tmp_path / "c", params, gt.adam(0.1).init(params), step=3))


def _restore(path):
    params = make_params()
    return ckpt.restore(path, params, gt.adam(0.1).init(params))


def _write_meta(path, data: bytes):
    (path / "meta" / "metadata").write_bytes(data)


def test_no_checkpoint_is_a_file_not_found_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    for name, says in [
        ("missing", "no such folder"),
        ("file", "a file"),
        ("empty", "the folder is empty"),
        ("other", "holds notes.txt"),
    ]:
        with pytest.raises(FileNotFoundError, match=says) as info:
            _restore(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def test_a_manager_directory_is_not_a_checkpoint(tmp_path):
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
    params = make_params()
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        manager.save(1, args=ckpt.save_args(params, gt.adam(0.1).init(params), 1))
    with pytest.raises(FileNotFoundError, match="pass one of its step folders"):
        _restore(tmp_path / "run")
    assert _restore(tmp_path / "run" / "1")[2] == 1


def test_an_unfinished_save_is_corrupted(saved):
    temporary = saved.with_name("c.orbax-checkpoint-tmp-1234")
    shutil.copytree(saved, temporary)
    with pytest.raises(ckpt.CheckpointCorruptedError, match="did not finish"):
        _restore(temporary)


@pytest.mark.parametrize("item", ["meta", "state"])
def test_a_missing_item_is_corrupted(saved, item):
    shutil.rmtree(saved / item)
    with pytest.raises(
        ckpt.CheckpointCorruptedError, match=f"its {item} item is missing"
    ):
        _restore(saved)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (None, "metadata file .* is missing"),
        (b"{not json", "not valid JSON .*JSONDecodeError"),
        (b"\xff\xfe\x00garbage", "not valid JSON .*UnicodeDecodeError"),
        (b"[1, 2]", "not a gradtransforms record"),
        (json.dumps({"format": "gradtransforms.checkpoint/2"}).encode(), "lacks"),
    ],
    ids=["deleted", "not_json", "not_utf8", "not_a_record", "fields_missing"],
)
def test_damaged_metadata_is_corrupted(saved, damage, says):
    if damage is None:
        (saved / "meta" / "metadata").unlink()
    else:
        _write_meta(saved, damage)
    with pytest.raises(ckpt.CheckpointCorruptedError, match=says) as info:
        _restore(saved)
    assert str(saved) in str(info.value)


def test_another_format_is_a_mismatch(saved):
    meta = json.loads((saved / "meta" / "metadata").read_text())
    _write_meta(saved, json.dumps({**meta, "format": "other/9"}).encode())
    with pytest.raises(ckpt.CheckpointMismatchError, match="has format 'other/9'"):
        _restore(saved)


def test_damaged_arrays_are_corrupted(saved):
    for data in (saved / "state").rglob("d"):
        shutil.rmtree(data)
    with pytest.raises(
        ckpt.CheckpointCorruptedError, match="arrays cannot be read"
    ) as info:
        _restore(saved)
    assert str(saved) in str(info.value)


def test_damaged_metadata_through_a_manager(tmp_path):
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
    params, state = make_params(), gt.adam(0.1).init(make_params())
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        manager.save(1, args=ckpt.save_args(params, state, 1))
    _write_meta(tmp_path / "run" / "1", b"{oops")
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        with pytest.raises(ckpt.CheckpointCorruptedError, match="run/1"):
            manager.restore(1, args=ckpt.restore_args(params, state))


_SAVER = """
import sys, jax.numpy as jnp
import gradtransforms as gt
from tests.checkpoint.common import make_params
params = make_params(jnp.float32)
tx = gt.adam(0.1)
for i in range(10_000):
    p = {k: v + i for k, v in params.items()}
    gt.checkpoint.save(f"{sys.argv[1]}/step_{i}", p, tx.init(p), step=i, tx=tx)
    print(i, flush=True)
"""


def test_a_save_killed_midway_never_restores_wrong(tmp_path):
    """SIGKILL while saving in a loop: complete checkpoints restore exactly."""
    child = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(tmp_path)],
        cwd=ROOT,
        env={"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(3)]  # 3 saves done
        assert all(lines), "the saver stopped early"
        time.sleep(0.05)  # somewhere in the middle of a later save
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    tx = gt.adam(0.1)
    complete = 0
    for folder in sorted(tmp_path.iterdir()):
        like = make_params(jnp.float32)
        try:
            params, state, step = ckpt.restore(folder, like, tx.init(like), tx=tx)
        except ckpt.CheckpointCorruptedError:
            assert "tmp" in folder.name, folder  # only an unfinished save
            continue
        expected = {k: v + step for k, v in make_params(jnp.float32).items()}
        bitwise_equal(params, expected)
        bitwise_equal(state, tx.init(expected))
        complete += 1
    assert complete >= 3
