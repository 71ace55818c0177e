import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnngrad import tasks
from rnngrad.tasks import STREAMS, TASKS, baseline_loss, get_task, make_batch


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


# ---------------------------------------------------------------- random streams

# Seeds that collided before streams were keyed: 1_000_003 (the old evaluation seed: its
# step 0 was the evaluation batch) and 1_000_033 (the old probe seed: its step s was the
# probe batch of seed s); and seeds around the 32-bit word boundary.
SPECIAL_SEEDS = [999_999, 1_000_003, 1_000_033, 2**32 - 1, 2**32, 2**32 + 5, 2**63, 2**64 - 1]


def _first_draws(task: str, seed: int, step: int, stream: str) -> bytes:
    """The first draws behind a batch: a smaller batch of the same stream is a prefix of a
    larger one (copy), and the first values come first (adding), so equal first draws are
    what a training batch equal to part of an evaluation batch would show."""
    if task == "copy":
        x, _ = make_batch("copy", 2, 4, seed, step, stream=stream)
        return x[:, :10].numpy().tobytes()  # 40 symbols: 8**40 possibilities
    x, _ = make_batch("adding", 4, 1, seed, step, stream=stream)
    return x[0, :, 0].numpy().tobytes()  # the first four U(0, 1) values


@pytest.mark.parametrize("task", sorted(TASKS))
def test_no_training_batch_equals_an_evaluation_test_or_probe_batch(task):
    seeds = [*range(2000), *SPECIAL_SEEDS]
    train = {_first_draws(task, s, step, "train") for s in seeds for step in range(3)}
    assert len(train) == 3 * len(seeds)
    for stream in ("eval", "test", "probe"):
        other = {_first_draws(task, s, 0, stream) for s in seeds}
        assert len(other) == len(seeds)
        assert not train & other, stream


def test_the_streams_are_keyed_by_construction_not_by_seed_ranges():
    assert STREAMS == ("train", "eval", "test", "probe")
    batches = [make_batch("copy", 5, 8, 1_000_003, 0, stream=s)[0] for s in STREAMS]
    for i, a in enumerate(batches):
        for b in batches[i + 1 :]:
            assert not torch.equal(a, b)
    assert torch.equal(batches[0], make_batch("copy", 5, 8, 1_000_003, 0)[0])  # train default
    # within a stream, a smaller copy batch is the first rows of a larger one
    big = make_batch("copy", 20, 500, 3, 0, stream="eval")[0]
    assert torch.equal(make_batch("copy", 20, 64, 3, 0, stream="eval")[0], big[:64])
    assert not torch.equal(make_batch("copy", 20, 64, 3, 0)[0], big[:64])


def test_seed_words_are_immune_to_zero_padding_and_word_splitting():
    # numpy's SeedSequence splits an int into 32-bit words and pads short entropy with
    # zero words, so entropy [seed, step] makes these pairs one generator:
    def naive(seed, step):
        ss = np.random.SeedSequence([seed, step], spawn_key=(0,))
        return np.random.default_rng(ss).random(4)

    pairs = [((2**32 + 5, 0), (5, 1)), ((2**32 + 5, 7), (5, 7 * 2**32 + 1))]
    assert np.random.SeedSequence([5]).generate_state(4).tolist() == (
        np.random.SeedSequence([5, 0]).generate_state(4).tolist()
    )
    for a, b in pairs:
        assert np.array_equal(naive(*a), naive(*b))  # the trap is real
        assert _first_draws("adding", *a, "train") != _first_draws("adding", *b, "train")
    # every (seed, step) becomes exactly four words: no padding, no splitting
    for seed in (0, 1, 2**32 - 1, 2**32, 2**64 - 1):
        for step in (0, 1, 2**32, 2**64 - 1):
            entropy = tasks._seed_sequence(seed, step, "train").entropy
            assert len(entropy) == 4
            assert entropy[0] + 2**32 * entropy[1] == seed
            assert entropy[2] + 2**32 * entropy[3] == step


def test_bad_seeds_steps_and_streams_name_the_problem():
    with pytest.raises(ValueError, match=r"< 2\*\*64"):
        make_batch("adding", 10, 2, 2**64, 0)
    with pytest.raises(ValueError, match="step must be an integer"):
        make_batch("adding", 10, 2, 0, 1.5)
    with pytest.raises(ValueError, match=r"unknown stream 'validation'.*'eval'"):
        make_batch("adding", 10, 2, 0, 0, stream="validation")
