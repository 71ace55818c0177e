import math

import pytest
import torch
import torch.nn.functional as F

from rnngrad.tasks import TASKS, baseline_loss, get_task, make_batch


@pytest.mark.parametrize("T", [2, 10, 51])
def test_adding_shapes_and_dtypes(T):
    x, y = make_batch("adding", T, 7, seed=0, step=0)
    assert x.shape == (7, T, 2) and x.dtype == torch.float32
    assert y.shape == (7,) and y.dtype == torch.float32


@pytest.mark.parametrize("T", [2, 10, 51])
def test_copy_shapes_and_dtypes(T):
    x, y = make_batch("copy", T, 7, seed=0, step=0)
    assert x.shape == (7, T + 20) and x.dtype == torch.int64
    assert y.shape == (7, T + 20) and y.dtype == torch.int64


@pytest.mark.parametrize("task", sorted(TASKS))
def test_batches_are_stateless_in_seed_and_step(task):
    a = make_batch(task, 30, 16, seed=3, step=5)
    torch.manual_seed(123)  # global state must not matter
    b = make_batch(task, 30, 16, seed=3, step=5)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    c = make_batch(task, 30, 16, seed=3, step=6)
    d = make_batch(task, 30, 16, seed=4, step=5)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], d[0])


def test_adding_markers_and_target():
    T = 40
    x, y = make_batch("adding", T, 500, seed=1, step=2)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, : T // 2].sum(1) == 1).all()
    assert (markers[:, T // 2 :].sum(1) == 1).all()
    torch.testing.assert_close(y, (values * markers).sum(1))


def test_adding_baseline_is_variance_of_the_sum():
    assert baseline_loss("adding", 100) == pytest.approx(1 / 6)
    _, y = make_batch("adding", 50, 20_000, seed=0, step=0)
    mse = F.mse_loss(torch.ones_like(y), y).item()
    assert abs(mse - 1 / 6) < 0.005


def test_copy_layout():
    T = 25
    x, y = make_batch("copy", T, 300, seed=0, step=1)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 10 : T + 9] == 0).all()  # T-1 blanks
    assert (x[:, T + 9] == 9).all()  # delimiter
    assert (x[:, T + 10 :] == 0).all()
    assert (y[:, : T + 10] == 0).all()
    assert torch.equal(y[:, -10:], x[:, :10])
    task = get_task("copy")
    assert task.first_read(T) == T + 10 and task.seq_len(T) == T + 20


@pytest.mark.parametrize("T", [5, 50, 200])
def test_copy_baseline_equals_memoryless_predictor(T):
    x, y = make_batch("copy", T, 2000, seed=0, step=0)
    # blanks where the target is always blank, uniform over 1..8 on the recall positions
    logits = torch.full((*y.shape, 10), -1e9)
    logits[:, : T + 10, 0] = 0.0
    logits[:, T + 10 :, 1:9] = 0.0
    ce = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1)).item()
    assert ce == pytest.approx(baseline_loss("copy", T), rel=0.01)
    assert baseline_loss("copy", T) == pytest.approx(10 * math.log(8) / (T + 20))


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown task 'adder'.*adding"):
        make_batch("adder", 10, 2, 0, 0)
    with pytest.raises(ValueError, match="length must be an integer >= 2"):
        make_batch("adding", 1, 2, 0, 0)
    with pytest.raises(ValueError, match="seed and step must be >= 0"):
        make_batch("copy", 10, 2, -1, 0)
